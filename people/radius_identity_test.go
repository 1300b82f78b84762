package people

import (
	"context"
	"crypto/hmac"
	"crypto/md5"
	"net/netip"
	"testing"
	"time"

	layeh "layeh.com/radius"
	"layeh.com/radius/rfc2865"

	"github.com/gatehouse-net/gatehouse/radius"
)

// The RADIUS server holds people's identities in memory (radius's
// identity cache over RADIUSIdentities' change log), and still rejects a
// person on the very first request after their revocation or a password
// change commits: nothing waits for the cache's check interval. (Here the
// argon2id hashing and the revocation's other work outlast that interval
// anyway; radius's TestIdentityCacheSeesRevocations proves the no-wait
// part with an hour's interval.)
func TestRADIUSRejectsOnTheRequestRightAfterARevocation(t *testing.T) {
	ctx := context.Background()
	s, _ := school(t, Options{})
	p := state(t, s, "WOO08")
	const user, pw, secret = "woo08", "correct horse battery", "testing123"
	p.Username = user
	if _, err := s.st.UpdatePerson(ctx, "test", "person.update", p, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := s.SetWiFiPassword(ctx, "test", p.ID, pw); err != nil {
		t.Fatal(err)
	}
	srv := startRADIUS(t, secret, radius.Options{
		Segments: []radius.Segment{{Name: "staff", VLAN: 10, SSIDs: []string{"Staff"}}},
		Devices:  radius.StoreDevices{Store: s.st}, Identities: RADIUSIdentities{Service: s},
	})

	login := func(password string) layeh.Code {
		t.Helper()
		pkt := layeh.New(layeh.CodeAccessRequest, []byte(secret))
		_ = rfc2865.UserName_SetString(pkt, user)
		_ = rfc2865.UserPassword_SetString(pkt, password)
		_ = rfc2865.CalledStationID_SetString(pkt, "0A-00-00-00-00-01:Staff")
		return exchange(t, srv, pkt).Code
	}
	if got := login(pw); got != layeh.CodeAccessAccept {
		t.Fatalf("first login: %v", got)
	}
	if got := login(pw); got != layeh.CodeAccessAccept { // from memory now
		t.Fatalf("re-authentication: %v", got)
	}
	const newPW = "a different passphrase"
	if err := s.SetWiFiPassword(ctx, "test", p.ID, newPW); err != nil {
		t.Fatal(err)
	}
	if got := login(pw); got != layeh.CodeAccessReject {
		t.Fatalf("the old password right after a change: %v, want reject", got)
	}
	if got := login(newPW); got != layeh.CodeAccessAccept {
		t.Fatalf("the new password: %v", got)
	}
	if got := login(newPW); got != layeh.CodeAccessAccept {
		t.Fatalf("the new password again: %v", got)
	}
	if _, err := s.RevokeNow(ctx, "test", p.ID, "dismissed"); err != nil {
		t.Fatal(err)
	}
	if got := login(newPW); got != layeh.CodeAccessReject {
		t.Fatalf("the request right after the revocation: %v, want reject", got)
	}
}

// startRADIUS runs a RADIUS server with o's segments, devices and
// identities on a loopback port, for one access point at 127.0.0.1 with
// secret, rejecting without delay, until the test ends.
func startRADIUS(t *testing.T, secret string, o radius.Options) *radius.Server {
	t.Helper()
	o.AuthAddr = "127.0.0.1:0"
	o.Clients = []radius.Client{{Name: "ap", Prefix: netip.MustParsePrefix("127.0.0.1/32"), Secret: []byte(secret), RequireMessageAuthenticator: true}}
	o.RejectDelay = -1
	srv, err := radius.New(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return srv
}

// exchange signs pkt and sends it to srv, failing the test without an
// answer in 10 s.
func exchange(t *testing.T, srv *radius.Server, pkt *layeh.Packet) *layeh.Packet {
	t.Helper()
	signRequest(t, pkt)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := layeh.Exchange(ctx, pkt, srv.AuthAddr().String())
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	return resp
}

// signRequest adds a valid Message-Authenticator (RFC 3579 3.2).
func signRequest(t *testing.T, p *layeh.Packet) {
	t.Helper()
	p.Set(80, make(layeh.Attribute, 16))
	b, err := p.Encode()
	if err != nil {
		t.Fatal(err)
	}
	m := hmac.New(md5.New, p.Secret)
	m.Write(b)
	p.Set(80, m.Sum(nil))
}
