package radiusweb

import (
	"errors"
	"html/template"
	"net/http"
	"slices"
	"strings"

	"github.com/gatehouse-net/gatehouse/radius"
	"github.com/gatehouse-net/gatehouse/store"
	"github.com/gatehouse-net/gatehouse/web"
	"github.com/gatehouse-net/gatehouse/web/httpx"
)

// cardData is the printable key card.
type cardData struct {
	SSID, Key, MAC, Name string
	QR                   template.URL
}

// newKey gives an approved device a new personal key and shows it once, on
// a printable card with a QR code that joins ssid with it. The answer is
// the POST's own (no redirect to a page that could show it again) and is
// never cached; a resubmission makes another key, replacing this one.
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
	v := p.srv.View(c, "Personal Wi-Fi key")
	v.Data = cardData{SSID: ssid, Key: key, MAC: mac.String(), Name: name, QR: qr}
	c.Header("Cache-Control", "no-store")
	p.srv.Render(c, http.StatusOK, p.card, v)
}
