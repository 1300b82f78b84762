package radiusweb

import (
	"bytes"
	"context"
	"encoding/base64"
	"html"
	"image/png"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/skip2/go-qrcode"

	"github.com/gatehouse-net/gatehouse/radius"
	"github.com/gatehouse-net/gatehouse/web"
)

var (
	cardKey = regexp.MustCompile(`<p class="key">([^<]+)</p>`)
	cardQR  = regexp.MustCompile(`<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"`)
)

// TestKeyCardShowsTheNewKeyOnceWithItsWiFiQRCode: the sessions page's key
// form makes a key for an approved device only, and answers with a card,
// never cached and without scripts, whose QR code encodes the WIFI: form
// of the key now in force (with the SSID's reserved characters escaped).
func TestKeyCardShowsTheNewKeyOnceWithItsWiFiQRCode(t *testing.T) {
	b := newBench(t)
	ctx := context.Background()
	nm := b.site.Browser(t, web.RoleNetwork)
	page := nm.Get(PagePath)
	if !strings.Contains(page.Body, `action="`+KeyPath+`"`) || !strings.Contains(page.Body, "<option>Staff</option>") {
		t.Fatalf("the sessions page has no key form:\n%s", page.Body)
	}
	mac, _ := net.ParseMAC("3c:22:fb:01:02:03")
	ssid := `Pupils;"Wi:Fi"`
	form := url.Values{"mac": {"3C-22-FB-01-02-03"}, "ssid": {ssid}}

	// Not approved yet: no key, no card.
	if r := nm.PostForm(KeyPath, form); r.StatusCode != http.StatusConflict || cardKey.MatchString(r.Body) {
		t.Fatalf("unapproved device: %d\n%s", r.StatusCode, r.Body)
	}
	if keys, _ := b.keys.Keys(ctx, mac); len(keys) != 0 {
		t.Fatal("an unapproved device was given a key")
	}
	if err := b.st.ApproveDevice(ctx, "test", mac, "pupil", "Tablet 4", time.Now()); err != nil {
		t.Fatal(err)
	}
	if r := nm.PostForm(KeyPath, url.Values{"mac": {"3C-22-FB-01-02-03"}, "ssid": {"Elsewhere"}}); r.StatusCode != http.StatusBadRequest {
		t.Fatalf("an SSID that is not the school's: %d", r.StatusCode)
	}
	if r := b.site.Browser(t, web.RoleReception).PostForm(KeyPath, form); r.StatusCode != http.StatusForbidden {
		t.Fatalf("reception: %d", r.StatusCode)
	}

	r := nm.PostForm(KeyPath, form)
	if r.StatusCode != http.StatusOK || r.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("card: %d %q\n%s", r.StatusCode, r.Header.Get("Cache-Control"), r.Body)
	}
	if strings.Contains(r.Body, "<script") || !strings.Contains(r.Body, `href="`+KeyCSSPath+`"`) || !strings.Contains(r.Body, "Tablet 4") {
		t.Fatalf("card page:\n%s", r.Body)
	}
	m := cardKey.FindStringSubmatch(r.Body)
	if m == nil {
		t.Fatalf("no key on the card:\n%s", r.Body)
	}
	key := html.UnescapeString(m[1])
	if keys, err := b.keys.Keys(ctx, mac); err != nil || len(keys) != 1 || keys[0] != key {
		t.Fatalf("stored keys %v %v; the card shows %q", keys, err, key)
	}
	q := cardQR.FindStringSubmatch(html.UnescapeString(r.Body))
	if q == nil {
		t.Fatalf("no QR code on the card:\n%s", r.Body)
	}
	img, err := base64.StdEncoding.DecodeString(q[1])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := png.Decode(bytes.NewReader(img)); err != nil {
		t.Fatalf("the QR code is not a PNG: %v", err)
	}
	payload := radius.WiFiQR(ssid, key)
	if payload != `WIFI:T:WPA;S:Pupils\;\"Wi\:Fi\";P:`+key+`;;` {
		t.Fatalf("payload %q", payload)
	}
	want, err := qrcode.Encode(payload, qrcode.Medium, 220)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(img, want) {
		t.Fatal("the card's QR code does not encode the WIFI: form of the shown key")
	}

	// Another card replaces the key: the first one stops being the key.
	r2 := nm.PostForm(KeyPath, form)
	if m2 := cardKey.FindStringSubmatch(r2.Body); m2 == nil || m2[1] == m[1] {
		t.Fatalf("second card: %d", r2.StatusCode)
	}
	css := nm.Get(KeyCSSPath)
	if css.StatusCode != http.StatusOK || !strings.Contains(css.Body, "@media print") {
		t.Fatalf("card CSS: %d", css.StatusCode)
	}
}
