package web

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/gatehouse-net/gatehouse/store"
)

// auditVerbs says what each kind of audit entry means, as the rest of a
// sentence whose subject is the actor. %s is the object in words. Kinds not
// listed are said generically ("did voucher.frob on ...").
var auditVerbs = map[string]string{
	"login":                 "signed in",
	"logout":                "signed out",
	"user.create":           "created the admin user %s",
	"user.disable":          "disabled the admin user %s",
	"user.lock":             "was locked out after repeated wrong passwords (%s)",
	"user.password":         "changed the password of %s",
	"user.display_name":     "changed the display name of %s",
	"api_token.create":      "created an API token (%s)",
	"api_token.delete":      "revoked an API token (%s)",
	"voucher.issue":         "issued %s",
	"voucher.revoke":        "revoked %s",
	"voucher.extend":        "extended %s",
	"portal.aup":            "published a new Acceptable Use Policy",
	"device.approve":        "approved %s",
	"device.update":         "changed %s",
	"device.owner":          "set the owner of %s",
	"device.key":            "made a personal Wi-Fi key for %s",
	"device.purge_unleased": "removed devices that took no lease",
	"dhcp.reserve":          "reserved an address for %s",
	"dhcp.unreserve":        "removed the address reservation of %s",
	"rule.create":           "added %s",
	"rule.update":           "changed %s",
	"rule.delete":           "deleted %s",
	"rule.move":             "moved %s",
	"person.create":         "added %s",
	"person.update":         "changed %s",
	"person.revoke":         "revoked the access of %s",
	"person.revoke.finish":  "finished revoking %s",
	"person.hold":           "put the leaving of %s on hold",
	"person.postpone":       "postponed the leaving of %s",
	"person.reinstate":      "reinstated %s",
	"person.wifi_password":  "set the Wi-Fi password of %s",
	"person.keys.disable":   "disabled the Wi-Fi keys of %s",
	"group.create":          "created %s",
	"group.delete":          "deleted %s",
	"people.import.apply":   "applied an import from the school's records (%s)",
	"people.import.discard": "discarded an import preview (%s)",
	"people.import.preview": "previewed an import from the school's records (%s)",
	"people.mapping.save":   "saved a column mapping (%s)",
	"calendar.update":       "updated the term calendar",
	"alert.change":          "updated %s",
	"alert.suppress":        "suppressed alerts like %s",
	"ap.room":               "set the room of %s",
	"alerts.purge":          "removed old alerts (retention)",
	"findings.purge":        "removed old findings (retention)",
	"guest.purge":           "removed old visitor records (retention)",
	"people.purge":          "removed the records of people who left (retention)",
	"radius.sessions.purge": "removed old Wi-Fi sessions (retention)",
	"dnslog.purge":          "removed old DNS log entries (retention)",
}

// actorWords names who made an entry: "sarah (reception)" for an admin
// user, "root on the command line", "the scheduler".
func actorWords(actor string, roles map[string]string) string {
	switch {
	case strings.HasPrefix(actor, "web:"):
		name := strings.TrimPrefix(actor, "web:")
		if r, ok := roles[name]; ok {
			return name + " (" + r + ")"
		}
		return name
	case strings.HasPrefix(actor, "cli:"):
		return strings.TrimPrefix(actor, "cli:") + " on the command line"
	case actor == "scheduler":
		return "the scheduler"
	}
	return actor
}

// objectWords says what an object reference is: "voucher:12" -> "code 12".
func objectWords(object string) string {
	kind, id, ok := strings.Cut(object, ":")
	if !ok {
		return object
	}
	switch kind {
	case "voucher":
		return "visitor code " + id
	case "user":
		return id
	case "device":
		return "device " + id
	case "rule":
		return "rule " + id
	case "person":
		return "person " + id
	case "group":
		return "group " + id
	case "alert":
		return "alert " + id
	case "api_token":
		return "token " + id
	}
	return object
}

// voucherWords describes a code from its audit JSON: "a 2-hour code for 1
// device (visitor code 12)".
func voucherWords(object, after string) string {
	var v struct {
		DurationS  int64 `json:"duration_s"`
		MaxDevices int   `json:"max_devices"`
	}
	if json.Unmarshal([]byte(after), &v) != nil || v.DurationS <= 0 {
		return objectWords(object)
	}
	devices := "any number of devices"
	switch {
	case v.MaxDevices == 1:
		devices = "1 device"
	case v.MaxDevices > 1:
		devices = fmt.Sprintf("%d devices", v.MaxDevices)
	}
	return fmt.Sprintf("a %s code for %s (%s)", hyphenDuration(time.Duration(v.DurationS)*time.Second), devices, objectWords(object))
}

// hyphenDuration is a duration used as an adjective: "2-hour", "30-minute",
// "3-day", "90-minute".
func hyphenDuration(d time.Duration) string {
	switch {
	case d >= 24*time.Hour && d%(24*time.Hour) == 0:
		return fmt.Sprintf("%d-day", d/(24*time.Hour))
	case d >= time.Hour && d%time.Hour == 0:
		return fmt.Sprintf("%d-hour", d/time.Hour)
	}
	return fmt.Sprintf("%d-minute", d/time.Minute)
}

// auditSentence is an audit entry in words: "sarah (reception) issued a
// 2-hour code for 1 device (visitor code 12)".
func auditSentence(e store.AuditEntry, roles map[string]string) string {
	who := actorWords(e.Actor, roles)
	verb, ok := auditVerbs[e.Action]
	if !ok {
		return fmt.Sprintf("%s: %s on %s", who, e.Action, objectWords(e.Object))
	}
	what := objectWords(e.Object)
	if e.Action == "voucher.issue" {
		what = voucherWords(e.Object, e.After)
	}
	if strings.Contains(verb, "%s") {
		verb = fmt.Sprintf(verb, what)
	}
	return who + " " + verb
}
