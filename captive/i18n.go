package captive

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Languages of the portal pages.
const (
	langEN = "en"
	langCY = "cy"
)

// messages holds every visitor-facing string in English and Welsh. Keys are
// the English text's short name; templates use them through .T.
var messages = map[string][2]string{
	"title":         {"Wi-Fi for visitors", "Wi-Fi i ymwelwyr"},
	"welcome":       {"Welcome. To use the Wi-Fi, type the code from your slip and accept the Acceptable Use Policy.", "Croeso. I ddefnyddio'r Wi-Fi, teipiwch y cod o'ch slip a derbyniwch y Polisi Defnydd Derbyniol."},
	"aup":           {"Acceptable Use Policy", "Polisi Defnydd Derbyniol"},
	"aup_read":      {"Read the Acceptable Use Policy", "Darllen y Polisi Defnydd Derbyniol"},
	"code":          {"Your code", "Eich cod"},
	"code_hint":     {"10 letters and numbers, for example ABCDE-23456. Capitals, spaces and dashes do not matter.", "10 llythyren a rhif, er enghraifft ABCDE-23456. Does dim ots am briflythrennau, bylchau na llinellau toriad."},
	"name":          {"Your name (optional)", "Eich enw (dewisol)"},
	"company":       {"Company or organisation (optional)", "Cwmni neu sefydliad (dewisol)"},
	"accept":        {"I have read and accept the Acceptable Use Policy", "Rwyf wedi darllen ac yn derbyn y Polisi Defnydd Derbyniol"},
	"connect":       {"Connect", "Cysylltu"},
	"connected":     {"You are connected", "Rydych chi wedi cysylltu"},
	"time_left":     {"Time left", "Amser ar ôl"},
	"until":         {"until", "tan"},
	"logout":        {"Log out", "Allgofnodi"},
	"logout_hint":   {"Logging out ends your Wi-Fi access on this device. You can connect again with the same code while it is valid.", "Mae allgofnodi'n dod â'ch mynediad Wi-Fi ar y ddyfais hon i ben. Gallwch gysylltu eto gyda'r un cod tra ei fod yn ddilys."},
	"logged_out":    {"You have logged out.", "Rydych chi wedi allgofnodi."},
	"other_lang":    {"Cymraeg", "English"},
	"errors":        {"There is a problem", "Mae problem"},
	"err_accept":    {"Tick the box to accept the Acceptable Use Policy.", "Ticiwch y blwch i dderbyn y Polisi Defnydd Derbyniol."},
	"err_form":      {"This form came from another site. Open this page again and sign in here.", "Daeth y ffurflen hon o wefan arall. Agorwch y dudalen hon eto a mewngofnodwch yma."},
	"err_invalid":   {"That code is not right. Check it against your slip and try again.", "Nid yw'r cod hwnnw'n gywir. Gwiriwch ef yn erbyn eich slip a rhowch gynnig arall arni."},
	"err_expired":   {"This code has expired. Ask reception for a new one.", "Mae'r cod hwn wedi dod i ben. Gofynnwch i'r dderbynfa am un newydd."},
	"err_revoked":   {"This code has been cancelled. Ask reception for a new one.", "Mae'r cod hwn wedi'i ganslo. Gofynnwch i'r dderbynfa am un newydd."},
	"err_notyet":    {"This code cannot be used yet. It works from %s.", "Ni ellir defnyddio'r cod hwn eto. Mae'n gweithio o %s."},
	"err_devices":   {"This code is already in use on as many devices as it allows (%d). Ask reception for another code for this device.", "Mae'r cod hwn eisoes yn cael ei ddefnyddio ar gynifer o ddyfeisiau ag y mae'n eu caniatáu (%d). Gofynnwch i'r dderbynfa am god arall ar gyfer y ddyfais hon."},
	"err_throttled": {"Too many wrong codes. Wait %s, then try again.", "Gormod o godau anghywir. Arhoswch %s, yna rhowch gynnig arall arni."},
	"err_device":    {"We could not identify your device. Turn Wi-Fi off and on again, then try again.", "Nid oeddem yn gallu adnabod eich dyfais. Diffoddwch y Wi-Fi a'i droi ymlaen eto, yna rhowch gynnig arall arni."},
	"err_internal":  {"Something went wrong while connecting you. Try again in a moment.", "Aeth rhywbeth o'i le wrth eich cysylltu. Rhowch gynnig arall arni mewn munud."},
	"not_found":     {"There is no such page.", "Nid oes tudalen o'r fath."},
	"back":          {"Back to the sign-in page", "Yn ôl i'r dudalen fewngofnodi"},
	"hours":         {"%d h %d min", "%d awr %d munud"},
	"minutes":       {"%d min", "%d munud"},
	"seconds":       {"%d seconds", "%d eiliad"},
}

// tr returns the message key in lang, formatted with args when given.
func tr(lang, key string, args ...any) string {
	m, ok := messages[key]
	if !ok {
		panic("captive: no message " + key) // a template or code typo: caught by the tests
	}
	s := m[0]
	if lang == langCY {
		s = m[1]
	}
	if len(args) > 0 {
		return fmt.Sprintf(s, args...)
	}
	return s
}

// pickLang chooses the page language: ?lang= (or the form's lang field)
// first, then the Accept-Language header's first of cy/en by weight.
func pickLang(r *http.Request) string {
	if l := r.FormValue("lang"); l == langCY || l == langEN {
		return l
	}
	best, bestQ := langEN, -1.0
	for i, part := range strings.Split(r.Header.Get("Accept-Language"), ",") {
		if i > 20 {
			break
		}
		tag, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		q := 1.0
		if v, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				q = f
			}
		}
		primary, _, _ := strings.Cut(strings.ToLower(tag), "-")
		if (primary == langCY || primary == langEN) && q > bestQ {
			best, bestQ = primary, q
		}
	}
	return best
}

// durationText says how long d is, in lang, to the minute (seconds under a
// minute).
func durationText(lang string, d time.Duration) string {
	if d < time.Minute {
		return tr(lang, "seconds", int((d+time.Second-1)/time.Second))
	}
	m := int(d / time.Minute)
	if m < 60 {
		return tr(lang, "minutes", m)
	}
	return tr(lang, "hours", m/60, m%60)
}

// Month and day names in Welsh: Go's time package knows only English ones,
// and a Welsh page that says "6 Dec 2026" is half translated.
var (
	monthsCY = [12]string{"Ionawr", "Chwefror", "Mawrth", "Ebrill", "Mai", "Mehefin",
		"Gorffennaf", "Awst", "Medi", "Hydref", "Tachwedd", "Rhagfyr"}
	daysCY = [7]string{"Dydd Sul", "Dydd Llun", "Dydd Mawrth", "Dydd Mercher", "Dydd Iau", "Dydd Gwener", "Dydd Sadwrn"}
)

// dateTimeText is a time of day and date as the status page shows it, in
// lang: "15:04, Sunday 6 December 2026" or "15:04, Dydd Sul 6 Rhagfyr 2026".
func dateTimeText(lang string, t time.Time) string {
	if lang == langCY {
		return fmt.Sprintf("%s, %s %d %s %d", t.Format("15:04"), daysCY[t.Weekday()], t.Day(), monthsCY[t.Month()-1], t.Year())
	}
	return t.Format("15:04, Monday 2 January 2006")
}
