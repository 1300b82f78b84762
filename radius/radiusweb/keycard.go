package radiusweb

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"html/template"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse-net/gatehouse/radius"
	"github.com/gatehouse-net/gatehouse/store"
	"github.com/gatehouse-net/gatehouse/web"
	"github.com/gatehouse-net/gatehouse/web/httpx"
)

// cardData is the printable key card, or, once it has been shown, the
// offer to make another key.
type cardData struct {
	SSID, Key, MAC, Name string
	QR                   template.URL
	// Shown: the card was already shown (or is gone): no key, and a
	// form to make a new one instead.
	Shown bool
}

// A key card is kept between the POST that makes the key and the one GET
// that shows it: cardTTL bounds how long an unshown key waits in memory,
// cardMemory how long a shown card's token still says "already shown", and
// maxCards the table (the network role's users make these one at a time).
const (
	cardTTL    = 5 * time.Minute
	cardMemory = time.Hour
	maxCards   = 256
)

// pendingCard is one card: its key until shown, then only what the offer
// to rotate needs.
type pendingCard struct {
	actor   string // only who made the key sees the card
	card    cardData
	expires time.Time
}

// cardBook keeps the cards made and not yet shown, by one-time token.
type cardBook struct {
	mu    sync.Mutex
	cards map[string]*pendingCard
	now   func() time.Time
}

func newCardBook() *cardBook {
	return &cardBook{cards: map[string]*pendingCard{}, now: time.Now}
}

// put keeps a new card and returns its token.
func (b *cardBook) put(actor string, card cardData) (string, error) {
	var t [24]byte
	if _, err := rand.Read(t[:]); err != nil {
		return "", err
	}
	token := base64.RawURLEncoding.EncodeToString(t[:])
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	b.sweepLocked(now)
	if len(b.cards) >= maxCards {
		// Full of recent cards: forget the one expiring first (an
		// unshown key in it can be made again).
		var first string
		for k, c := range b.cards {
			if first == "" || c.expires.Before(b.cards[first].expires) {
				first = k
			}
		}
		delete(b.cards, first)
	}
	b.cards[token] = &pendingCard{actor: actor, card: card, expires: now.Add(cardTTL)}
	return token, nil
}

// sweepLocked forgets expired cards, so that an unshown key does not stay
// in memory past cardTTL.
func (b *cardBook) sweepLocked(now time.Time) {
	for k, c := range b.cards {
		if !now.Before(c.expires) {
			delete(b.cards, k)
		}
	}
}

// take returns the card of token for actor, with its key the first time
// only: after that the key is dropped from memory and the card says it was
// shown. ok is false for a token unknown, expired or someone else's.
func (b *cardBook) take(actor, token string) (card cardData, ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sweepLocked(b.now())
	c := b.cards[token]
	if c == nil || c.actor != actor || !b.now().Before(c.expires) {
		return cardData{}, false
	}
	card = c.card
	c.card.Key, c.card.QR, c.card.Shown = "", "", true
	c.expires = b.now().Add(cardMemory)
	return card, true
}

// newKey gives an approved device a new personal key and redirects to the
// card that shows it, once: the POST's answer carries no key, so neither a
// reload nor the browser's history makes another key or shows this one
// again.
func (p *pages) newKey(c *httpx.Context) {
	macText, ssid := strings.TrimSpace(c.PostForm("mac")), strings.TrimSpace(c.PostForm("ssid"))
	fail := func(status int, msg string) {
		v := p.srv.View(c, "Wi-Fi sessions")
		v.Error = msg
		v.Data = pageData{KeyMAC: macText, KeySSID: ssid}
		p.render(c, status, v)
	}
	mac, ok := radius.ParseMAC(macText)
	if !ok {
		fail(http.StatusBadRequest, "The device must be given by its MAC address, like 3c:22:fb:01:02:03.")
		return
	}
	switch {
	case len(p.o.SSIDs) > 0 && !slices.Contains(p.o.SSIDs, ssid):
		fail(http.StatusBadRequest, "Choose one of the school's Wi-Fi networks for the card.")
		return
	case ssid == "" || len(ssid) > 32:
		fail(http.StatusBadRequest, "The Wi-Fi network's name (SSID) is 1 to 32 bytes.")
		return
	}
	ctx := c.Request.Context()
	var name string
	if p.o.Devices != nil {
		// As "gatehouse device key": only an approved, unblocked device
		// gets a key, so a card never names a device RADIUS rejects.
		d, err := p.o.Devices.DeviceByMAC(ctx, mac)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			p.log.Error("radiusweb: new key: read device", "mac", mac, "err", err)
			p.srv.RenderError(c, http.StatusInternalServerError, "The database could not be read. Try again; if it keeps failing, check the daemon's log.")
			return
		}
		if err != nil || !d.Approved || d.Blocked {
			fail(http.StatusConflict, "That device is not approved (or is blocked). Approve it on the Devices page first.")
			return
		}
		name = d.Name
	}
	key, err := p.o.Keys.Rotate(ctx, web.Actor(c), mac)
	if errors.Is(err, store.ErrNotFound) {
		fail(http.StatusNotFound, "No such device. Approve it on the Devices page first.")
		return
	}
	if err != nil {
		p.log.Error("radiusweb: new key", "mac", mac, "err", err)
		p.srv.RenderError(c, http.StatusInternalServerError, "The key could not be made; the database could not be written.")
		return
	}
	qr, err := web.QRDataURL(radius.WiFiQR(ssid, key))
	if err != nil {
		// The key is already in force: show it without the code.
		p.log.Error("radiusweb: key card QR code", "err", err)
	}
	token, err := p.cards.put(web.Actor(c), cardData{SSID: ssid, Key: key, MAC: mac.String(), Name: name, QR: qr})
	if err != nil {
		p.log.Error("radiusweb: key card token", "err", err)
		p.srv.RenderError(c, http.StatusInternalServerError, "The key was made but its card could not be kept; make another key.")
		return
	}
	c.Redirect(http.StatusSeeOther, KeyCardPath+"?card="+token)
}

// showCard shows a key card once: the printable card with its QR code the
// first time, and after that (or when it is unknown or expired) a notice
// that it was shown, with a form to make another key for the same device.
func (p *pages) showCard(c *httpx.Context) {
	c.Header("Cache-Control", "no-store")
	// The card's address is its one-time token: never sent on.
	c.Header("Referrer-Policy", "no-referrer")
	card, ok := p.cards.take(web.Actor(c), c.Query("card"))
	status := http.StatusOK
	switch {
	case !ok:
		status = http.StatusNotFound
		card = cardData{Shown: true}
	case card.Shown:
		status = http.StatusGone
	}
	v := p.srv.View(c, "Personal Wi-Fi key")
	v.Data = card
	p.srv.Render(c, status, p.card, v)
}
