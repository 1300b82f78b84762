package radius

// EAP-TLS end to end with the school CA of package pki: the server
// certificate pki made for the configured name, a client certificate it
// issued as the PKCS#12 the network manager downloads (read by
// wpa_supplicant's OpenSSL with its one-time password), and revocation by
// its serial deny-list in the store.

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-net/gatehouse/pki"
	"github.com/gatehouse-net/gatehouse/radius/eap"
	"github.com/gatehouse-net/gatehouse/store"
)

func TestEapolTestEAPTLSWithTheSchoolCA(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := store.Open(ctx, filepath.Join(dir, "gatehouse.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	a, err := pki.Open(pki.Options{Dir: pki.DirFor(filepath.Join(dir, "gatehouse.db")), ServerName: eapServerName,
		Organization: "Test School", Store: st, People: st})
	if err != nil {
		t.Fatal(err)
	}
	amy, err := st.CreatePerson(ctx, "test", store.Person{Kind: "staff", StaffCode: "AMY", LegalForename: "Amy",
		LegalSurname: "Pond", Username: "amy"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	e := newEAPE2E(t, func(o *eap.Options) {
		o.TLS = a.TLSConfig()
		o.VerifyClient = a.VerifyLogin
	})
	caFile := filepath.Join(e.dir, "school-ca.pem")
	if err := os.WriteFile(caFile, a.Onboarding("Test School", []string{"Staff"}).CAPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	issue := func(name string) (file, pw string) {
		iss, err := a.IssuePerson(ctx, "web:nm", amy.ID)
		if err != nil {
			t.Fatal(err)
		}
		file = filepath.Join(e.dir, name+".p12")
		if err := os.WriteFile(file, iss.PKCS12, 0o600); err != nil {
			t.Fatal(err)
		}
		return file, iss.Password
	}
	network := func(v, p12, pw string) string {
		return "\tca_cert=\"" + caFile + "\"\n\tdomain_suffix_match=\"" + eapServerName + "\"\n\teap=TLS\n" +
			"\tidentity=\"amy@" + a.Realm() + "\"\n\tprivate_key=\"" + p12 + "\"\n\tprivate_key_passwd=\"" + pw + "\"\n" +
			"\tphase1=\"" + tlsPhase1(v) + "\"\n"
	}
	p12, pw := issue("amy")
	for _, v := range []string{"1.2", "1.3"} {
		ok, out := e.eapolTest(t, "pki-ok", network(v, p12, pw))
		if !ok || !strings.Contains(out, "MPPE keys OK: 1  mismatch: 0") || tlsVersionUsed(out) != v {
			t.Fatalf("EAP-TLS %s with the PKCS#12:\n%s", v, tail(out, 60))
		}
	}

	// A wrong server name in the supplicant fails: the certificate names
	// only the configured one.
	if ok, out := e.eapolTest(t, "pki-domain", strings.Replace(network("1.2", p12, pw), eapServerName, "radius.other.example", 1)); ok ||
		!strings.Contains(out, "Domain suffix mismatch") {
		t.Fatalf("wrong domain:\n%s", tail(out, 40))
	}

	// Revoked (the leaver hook revokes all of a person's): refused at once.
	if err := (pki.PersonCertificates{Store: st, Actor: "people"}).DisablePerson(ctx, amy.ID); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"1.2", "1.3"} {
		if ok, out := e.eapolTest(t, "pki-revoked", network(v, p12, pw)); ok {
			t.Fatalf("revoked certificate over TLS %s:\n%s", v, tail(out, 40))
		}
	}
	// A new certificate for the same person works again.
	p12b, pwb := issue("amy2")
	if ok, out := e.eapolTest(t, "pki-new", network("1.3", p12b, pwb)); !ok {
		t.Fatalf("new certificate:\n%s", tail(out, 60))
	}
}

// TestEapolTestEAPTLSDeviceCertificate: a device certificate from the
// school CA (a DNS name, no person) logs in as the device at
// Calling-Station-Id when that device is approved under the certificate's
// name, and goes on the device's segment (VLAN), not the SSID's; the same
// certificate from an unknown MAC, a blocked device, an unapproved one or a
// device approved under another name is rejected.
func TestEapolTestEAPTLSDeviceCertificate(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := store.Open(ctx, filepath.Join(dir, "gatehouse.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	a, err := pki.Open(pki.Options{Dir: pki.DirFor(filepath.Join(dir, "gatehouse.db")), ServerName: eapServerName,
		Organization: "Test School", Store: st, People: st})
	if err != nil {
		t.Fatal(err)
	}
	e := newEAPE2E(t, func(o *eap.Options) {
		o.TLS = a.TLSConfig()
		o.VerifyClient = a.VerifyLogin
	})
	caFile := filepath.Join(e.dir, "school-ca.pem")
	if err := os.WriteFile(caFile, a.Onboarding("Test School", []string{"Staff"}).CAPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	iss, err := a.IssueDevice(ctx, "web:nm", "Laptop7.school.example")
	if err != nil {
		t.Fatal(err)
	}
	p12 := filepath.Join(e.dir, "laptop7.p12")
	if err := os.WriteFile(p12, iss.PKCS12, 0o600); err != nil {
		t.Fatal(err)
	}
	network := "\tca_cert=\"" + caFile + "\"\n\tdomain_suffix_match=\"" + eapServerName + "\"\n\teap=TLS\n" +
		"\tidentity=\"laptop7.school.example\"\n\tprivate_key=\"" + p12 + "\"\n\tprivate_key_passwd=\"" + iss.Password + "\"\n" +
		"\tphase1=\"" + tlsPhase1("1.2") + "\"\n"
	const mac = "02:00:00:00:00:42" // eapolTest's -M

	// Unknown MAC: nobody approved this machine.
	if ok, out := e.eapolTest(t, "dev-unknown", network); ok {
		t.Fatalf("device certificate from an unknown MAC accepted:\n%s", tail(out, 30))
	}
	for _, c := range []struct {
		name string
		info DeviceInfo
	}{
		{"unapproved", DeviceInfo{Name: "laptop7.school.example", Segment: "lab"}},
		{"blocked", DeviceInfo{Approved: true, Blocked: true, Name: "laptop7.school.example", Segment: "lab"}},
		{"other-name", DeviceInfo{Approved: true, Name: "laptop8.school.example", Segment: "lab"}},
	} {
		e.devices.set(mac, c.info)
		if ok, out := e.eapolTest(t, "dev-"+c.name, network); ok {
			t.Fatalf("%s device accepted:\n%s", c.name, tail(out, 30))
		}
	}
	e.devices.set(mac, DeviceInfo{Approved: true, Name: "laptop7.school.example", Segment: "lab"})
	ok, out := e.eapolTest(t, "dev-ok", network)
	if !ok || !strings.Contains(out, "MPPE keys OK: 1  mismatch: 0") {
		t.Fatalf("approved device's certificate:\n%s\n--- server:\n%s", tail(out, 60), e.logs.String())
	}
	// Its segment is the device's (lab, VLAN 50), not the SSID's (staff).
	var login string
	for _, l := range strings.Split(e.logs.String(), "\n") {
		if strings.Contains(l, `msg="radius: EAP login"`) {
			login = l
		}
	}
	if !strings.Contains(login, "identity=laptop7.school.example person=device:02:00:00:00:00:42 method=EAP-TLS") ||
		!strings.HasSuffix(login, "segment=lab") {
		t.Fatalf("login not logged as the device on its segment: %q\n%s", login, e.logs.String())
	}
}
