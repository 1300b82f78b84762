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
// form makes a key for an approved device only (CSRF required), and
// redirects to a card shown once, never cached and without scripts, whose
// QR code encodes the WIFI: form of the key now in force (with the SSID's
// reserved characters escaped). The POST's answer carries no key; a second
// GET of the card, or another user's, shows no key and offers a new one.
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

	// (PostForm above put the token into form: a fresh one without it.)
	if r := nm.Post(KeyPath, url.Values{"mac": {"3C-22-FB-01-02-03"}, "ssid": {ssid}}); r.StatusCode != http.StatusForbidden || cardKey.MatchString(r.Body) {
		t.Fatalf("a key was made without the CSRF token: %d", r.StatusCode)
	}
	if keys, _ := b.keys.Keys(ctx, mac); len(keys) != 0 {
		t.Fatal("a POST without the CSRF token made a key")
	}
	made := nm.PostForm(KeyPath, form)
	loc := made.Header.Get("Location")
	if made.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, KeyCardPath+"?card=") || cardKey.MatchString(made.Body) {
		t.Fatalf("make a key: %d %q\n%s", made.StatusCode, loc, made.Body)
	}
	// Another network manager cannot open this card.
	if r := b.site.Browser(t, web.RoleNetwork).Get(loc); r.StatusCode != http.StatusNotFound || cardKey.MatchString(r.Body) {
		t.Fatalf("another user's GET of the card: %d\n%s", r.StatusCode, r.Body)
	}
	r := nm.Get(loc)
	if r.StatusCode != http.StatusOK || r.Header.Get("Cache-Control") != "no-store" || r.Header.Get("Referrer-Policy") != "no-referrer" {
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

	// The card is shown once: again, it has no key, and offers a new one
	// for the same device and network, through a CSRF-protected form.
	again := nm.Get(loc)
	if again.StatusCode != http.StatusGone || cardKey.MatchString(again.Body) || strings.Contains(again.Body, key) ||
		strings.Contains(again.Body, "data:image/png") || !strings.Contains(again.Body, "already been shown") ||
		!strings.Contains(again.Body, `name="csrf"`) || !strings.Contains(again.Body, `value="3c:22:fb:01:02:03"`) {
		t.Fatalf("second GET of the card: %d\n%s", again.StatusCode, again.Body)
	}
	if r := nm.Get(KeyCardPath + "?card=nonsense"); r.StatusCode != http.StatusNotFound || !strings.Contains(r.Body, "expired") {
		t.Fatalf("unknown card: %d\n%s", r.StatusCode, r.Body)
	}
	// The offer makes another key, replacing this one, on a new card.
	r2 := nm.PostForm(KeyPath, url.Values{"mac": {"3c:22:fb:01:02:03"}, "ssid": {ssid}})
	c2 := nm.Get(r2.Header.Get("Location"))
	if m2 := cardKey.FindStringSubmatch(c2.Body); r2.StatusCode != http.StatusSeeOther || m2 == nil || m2[1] == m[1] {
		t.Fatalf("second key: %d %d", r2.StatusCode, c2.StatusCode)
	}
	if keys, _ := b.keys.Keys(ctx, mac); len(keys) != 1 || keys[0] == key {
		t.Fatalf("after the second key the stored keys are %v", keys)
	}
	css := nm.Get(KeyCSSPath)
	if css.StatusCode != http.StatusOK || !strings.Contains(css.Body, "@media print") {
		t.Fatalf("card CSS: %d", css.StatusCode)
	}
}

// TestCardBookForgetsUnshownKeysAndStaysBounded: a card not fetched within
// cardTTL is gone (its key with it), a shown one is remembered without its
// key, only its maker may fetch it, and the book never holds more than
// maxCards.
func TestCardBookForgetsUnshownKeysAndStaysBounded(t *testing.T) {
	now := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	b := newCardBook()
	b.now = func() time.Time { return now }
	tok, err := b.put("web:nm", cardData{Key: "k7dm-3xqa-9wpe-fh4t", MAC: "02:00:00:00:00:01", SSID: "Staff"})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := b.take("web:other", tok); ok {
		t.Fatal("another user took the card")
	}
	now = now.Add(cardTTL)
	if _, ok := b.take("web:nm", tok); ok {
		t.Fatal("a card was shown after cardTTL")
	}
	if len(b.cards) != 0 {
		t.Fatalf("%d cards held after expiry", len(b.cards))
	}
	tok, _ = b.put("web:nm", cardData{Key: "k7dm-3xqa-9wpe-fh4t", MAC: "02:00:00:00:00:01", SSID: "Staff"})
	if c, ok := b.take("web:nm", tok); !ok || c.Key == "" || c.Shown {
		t.Fatalf("first take: %+v %v", c, ok)
	}
	if c, ok := b.take("web:nm", tok); !ok || c.Key != "" || !c.Shown || c.MAC != "02:00:00:00:00:01" || b.cards[tok].card.Key != "" {
		t.Fatalf("second take: %+v %v", c, ok)
	}
	for range 2 * maxCards {
		if _, err := b.put("web:nm", cardData{Key: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	if len(b.cards) > maxCards {
		t.Fatalf("%d cards held, bound %d", len(b.cards), maxCards)
	}
}
