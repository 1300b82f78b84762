package pki

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// readPlist parses a plist with Python's plistlib, the reader Apple's
// format is checked against here (no Apple tools offline), and returns it
// as JSON values with data as base64.
func readPlist(t *testing.T, doc []byte) map[string]any {
	t.Helper()
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 not installed")
	}
	const prog = `import base64, json, plistlib, sys
def conv(v):
    if isinstance(v, bytes): return {"data": base64.b64encode(v).decode()}
    if isinstance(v, dict): return {k: conv(x) for k, x in v.items()}
    if isinstance(v, list): return [conv(x) for x in v]
    return v
json.dump(conv(plistlib.loads(sys.stdin.buffer.read(), fmt=plistlib.FMT_XML)), sys.stdout)`
	cmd := exec.Command("python3", "-c", prog)
	cmd.Stdin = bytes.NewReader(doc)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("plistlib refused the profile: %v\n%s", err, stderr.String())
	}
	var m map[string]any
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestMobileConfigIsAPlistWithCASSIDAndServerName(t *testing.T) {
	b := newBench(t)
	a := b.open(t)
	o := a.Onboarding("St Example's <School>", []string{"Staff", "Pupils & Co"})
	doc, err := o.MobileConfig()
	if err != nil {
		t.Fatal(err)
	}
	p := readPlist(t, doc)
	if p["PayloadType"] != "Configuration" || p["PayloadDisplayName"] != "St Example's <School> Wi-Fi" {
		t.Fatalf("top: %v", p)
	}
	content := p["PayloadContent"].([]any)
	if len(content) != 3 {
		t.Fatalf("%d payloads", len(content))
	}
	root := content[0].(map[string]any)
	der, _ := base64.StdEncoding.DecodeString(root["PayloadContent"].(map[string]any)["data"].(string))
	if root["PayloadType"] != "com.apple.security.root" || !bytes.Equal(der, a.CA().Raw) {
		t.Fatal("the root payload does not hold the CA")
	}
	var ssids []string
	uuids := map[string]bool{p["PayloadUUID"].(string): true, root["PayloadUUID"].(string): true}
	for _, c := range content[1:] {
		w := c.(map[string]any)
		if w["PayloadType"] != "com.apple.wifi.managed" || w["EncryptionType"] != "WPA2" {
			t.Fatalf("wifi payload %v", w)
		}
		ssids = append(ssids, w["SSID_STR"].(string))
		uuids[w["PayloadUUID"].(string)] = true
		eap := w["EAPClientConfiguration"].(map[string]any)
		if names := eap["TLSTrustedServerNames"].([]any); len(names) != 1 || names[0] != "radius.school.example" {
			t.Fatalf("trusted names %v", names)
		}
		if anchors := eap["PayloadCertificateAnchorUUID"].([]any); len(anchors) != 1 || anchors[0] != root["PayloadUUID"] {
			t.Fatalf("anchor %v, CA payload %v", anchors, root["PayloadUUID"])
		}
		if types := eap["AcceptEAPTypes"].([]any); !slices.Equal(types, []any{25.0, 21.0}) {
			t.Fatalf("EAP types %v", types)
		}
		if eap["OuterIdentity"] != "anonymous@school.example" {
			t.Fatalf("outer identity %v", eap["OuterIdentity"])
		}
	}
	if !slices.Equal(ssids, []string{"Staff", "Pupils & Co"}) || len(uuids) != 4 {
		t.Fatalf("ssids %v uuids %v", ssids, uuids)
	}
	// Downloading again gives the same profile (same UUIDs: it replaces).
	again, _ := o.MobileConfig()
	if !bytes.Equal(doc, again) {
		t.Fatal("the profile changes between downloads")
	}
	if _, err := a.Onboarding("x", nil).MobileConfig(); err == nil {
		t.Fatal("a profile without SSIDs was made")
	}
	if _, err := a.Onboarding("x", []string{strings.Repeat("s", 33)}).MobileConfig(); err == nil {
		t.Fatal("a 33-byte SSID was accepted")
	}
}

// node is a parsed XML element with its namespace.
type node struct {
	XMLName  xml.Name
	Text     string `xml:",chardata"`
	Children []node `xml:",any"`
}

func (n node) child(name string) (node, bool) {
	for _, c := range n.Children {
		if c.XMLName.Local == name {
			return c, true
		}
	}
	return node{}, false
}

func (n node) names() []string {
	var out []string
	for _, c := range n.Children {
		out = append(out, c.XMLName.Local)
	}
	return out
}

// wlanProblems checks the elements Microsoft's WLAN_profile schema (v1)
// and the EapHostConfig schema require, in the order their sequences give,
// with the values their enumerations allow, and lists what is wrong.
func wlanProblems(doc []byte) (node, []string) {
	var root node
	if err := xml.Unmarshal(doc, &root); err != nil {
		return root, []string{"not XML: " + err.Error()}
	}
	var bad []string
	fail := func(f string, a ...any) { bad = append(bad, fmt.Sprintf(f, a...)) }
	const ns = "http://www.microsoft.com/networking/WLAN/profile/v1"
	if root.XMLName.Space != ns || root.XMLName.Local != "WLANProfile" {
		return root, []string{fmt.Sprintf("root %v", root.XMLName)}
	}
	// WLANProfile: sequence name, SSIDConfig+, ..., connectionType,
	// connectionMode?, autoSwitch?, MSM?
	order := []string{"name", "SSIDConfig", "connectionType", "connectionMode", "autoSwitch", "MSM"}
	last := -1
	for _, c := range root.Children {
		if c.XMLName.Space != ns {
			fail("%s in namespace %q", c.XMLName.Local, c.XMLName.Space)
		}
		i := slices.Index(order, c.XMLName.Local)
		if i < last {
			fail("WLANProfile children out of schema order: %v", root.names())
		}
		last = max(last, i)
	}
	must := func(n node, path ...string) node {
		cur := n
		for _, p := range path {
			next, ok := cur.child(p)
			if !ok {
				fail("required element %s missing under %s (has %v)", p, cur.XMLName.Local, cur.names())
				return node{}
			}
			cur = next
		}
		return cur
	}
	oneOf := func(what, v string, allowed ...string) {
		if !slices.Contains(allowed, v) {
			fail("%s %q is not one of %v", what, v, allowed)
		}
	}
	if strings.TrimSpace(must(root, "name").Text) == "" {
		fail("empty name")
	}
	ssid := must(root, "SSIDConfig", "SSID")
	_, hasHex := ssid.child("hex")
	_, hasName := ssid.child("name")
	if !hasHex && !hasName {
		fail("SSID needs hex or name")
	}
	oneOf("connectionType", must(root, "connectionType").Text, "ESS", "IBSS")
	if m, ok := root.child("connectionMode"); ok {
		oneOf("connectionMode", m.Text, "auto", "manual")
	}
	ae := must(root, "MSM", "security", "authEncryption")
	if got := ae.names(); len(got) < 3 || !slices.Equal(got[:3], []string{"authentication", "encryption", "useOneX"}) {
		fail("authEncryption children %v", got)
	}
	oneOf("authentication", must(ae, "authentication").Text, "open", "shared", "WPA", "WPAPSK", "WPA2", "WPA2PSK", "WPA3", "WPA3ENT192", "WPA3ENT", "WPA3SAE", "OWE")
	oneOf("encryption", must(ae, "encryption").Text, "none", "WEP", "TKIP", "AES", "GCMP", "GCMP256")
	if must(ae, "useOneX").Text == "true" {
		onex := must(root, "MSM", "security", "OneX")
		if onex.XMLName.Space != "http://www.microsoft.com/networking/OneX/v1" {
			fail("OneX namespace %q", onex.XMLName.Space)
		}
		host := must(onex, "EAPConfig", "EapHostConfig")
		if host.XMLName.Space != "http://www.microsoft.com/provisioning/EapHostConfig" {
			fail("EapHostConfig namespace %q", host.XMLName.Space)
		}
		for _, e := range []string{"Type", "VendorId", "VendorType", "AuthorId"} {
			if n := must(host, "EapMethod", e); n.XMLName.Space != "http://www.microsoft.com/provisioning/EapCommon" {
				fail("EapMethod/%s namespace %q", e, n.XMLName.Space)
			}
		}
		must(host, "Config", "Eap", "Type")
	}
	return root, bad
}

func TestWindowsProfileHasTheSchemaRequiredElements(t *testing.T) {
	b := newBench(t)
	a := b.open(t)
	o := a.Onboarding("Test School", []string{"Staff & <Guests>"})
	doc, err := o.WindowsProfile("Staff & <Guests>")
	if err != nil {
		t.Fatal(err)
	}
	root, bad := wlanProblems(doc)
	if len(bad) > 0 {
		t.Fatalf("schema check: %v\n%s", bad, doc)
	}
	ssid, _ := root.child("SSIDConfig")
	s, _ := ssid.child("SSID")
	name, _ := s.child("name")
	hx, _ := s.child("hex")
	if name.Text != "Staff & <Guests>" || hx.Text != strings.ToUpper("5374616666202620")+"3C4775657374733E" {
		t.Fatalf("SSID %q hex %q", name.Text, hx.Text)
	}
	onex, _ := root.child("MSM")
	sec, _ := onex.child("security")
	x, _ := sec.child("OneX")
	peap := x
	for _, p := range []string{"EAPConfig", "EapHostConfig", "Config", "Eap", "EapType"} {
		peap, _ = peap.child(p)
	}
	sv, ok := peap.child("ServerValidation")
	if !ok {
		t.Fatal("no ServerValidation")
	}
	names, _ := sv.child("ServerNames")
	ca, _ := sv.child("TrustedRootCA")
	want := Thumbprint(a.TrustAnchor())
	if names.Text != "radius.school.example" || strings.ReplaceAll(ca.Text, " ", "") != want {
		t.Fatalf("ServerNames %q TrustedRootCA %q want %s", names.Text, ca.Text, want)
	}
	if _, err := o.WindowsProfile(""); err == nil {
		t.Fatal("empty SSID accepted")
	}
}

// TestWLANProfileCheckCatchesMissingElements proves the schema check can
// fail.
func TestWLANProfileCheckCatchesMissingElements(t *testing.T) {
	bad := []string{
		`<WLANProfile xmlns="http://www.microsoft.com/networking/WLAN/profile/v1"><SSIDConfig><SSID><name>x</name></SSID></SSIDConfig><connectionType>ESS</connectionType></WLANProfile>`,
		`<WLANProfile xmlns="http://www.microsoft.com/networking/WLAN/profile/v1"><name>x</name><SSIDConfig><SSID><name>x</name></SSID></SSIDConfig><connectionType>ESS</connectionType><MSM><security><authEncryption><authentication>WPA2</authentication><encryption>AES</encryption><useOneX>true</useOneX></authEncryption></security></MSM></WLANProfile>`,
		`<WLANProfile xmlns="http://www.microsoft.com/networking/WLAN/profile/v1"><name>x</name><connectionType>ESS</connectionType><SSIDConfig><SSID><name>x</name></SSID></SSIDConfig></WLANProfile>`,
	}
	for i, doc := range bad {
		if _, problems := wlanProblems([]byte(doc)); len(problems) == 0 {
			t.Errorf("bad profile %d passed the check", i)
		}
	}
}

func TestAndroidSettingsNameTheDomainAndCA(t *testing.T) {
	b := newBench(t)
	a := b.open(t)
	got := map[string]string{}
	for _, s := range a.Onboarding("T", []string{"Staff"}).AndroidSettings() {
		got[s.Name] = s.Value
	}
	if got["Domain"] != "radius.school.example" || got["EAP method"] != "PEAP" || got["Anonymous identity"] != "anonymous@school.example" ||
		!strings.Contains(got["CA certificate"], a.CA().Subject.CommonName) {
		t.Fatalf("%v", got)
	}
}

func TestMobileConfigTLSCarriesTheIdentityButNotItsPassword(t *testing.T) {
	b := newBench(t)
	a := b.open(t)
	p := b.person(t, "amy")
	iss, err := a.IssuePerson(context.Background(), "web:nm", p.ID)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := a.Onboarding("Test School", []string{"Staff"}).MobileConfigTLS(iss)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(doc, []byte(iss.Password)) {
		t.Fatal("the profile carries the PKCS#12 password")
	}
	pl := readPlist(t, doc)
	content := pl["PayloadContent"].([]any)
	if len(content) != 3 {
		t.Fatalf("%d payloads", len(content))
	}
	ca, id, wifi := content[0].(map[string]any), content[1].(map[string]any), content[2].(map[string]any)
	p12, _ := base64.StdEncoding.DecodeString(id["PayloadContent"].(map[string]any)["data"].(string))
	if id["PayloadType"] != "com.apple.security.pkcs12" || !bytes.Equal(p12, iss.PKCS12) {
		t.Fatal("the identity payload does not hold the PKCS#12")
	}
	eap := wifi["EAPClientConfiguration"].(map[string]any)
	if wifi["PayloadCertificateUUID"] != id["PayloadUUID"] || eap["UserName"] != "amy@school.example" ||
		eap["PayloadCertificateAnchorUUID"].([]any)[0] != ca["PayloadUUID"] || eap["AcceptEAPTypes"].([]any)[0] != 13.0 ||
		eap["TLSTrustedServerNames"].([]any)[0] != "radius.school.example" || wifi["SSID_STR"] != "Staff" {
		t.Fatalf("wifi payload %v", wifi)
	}
}
