package radiusweb

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gatehouse-net/gatehouse/radius"
	"github.com/gatehouse-net/gatehouse/store"
	"github.com/gatehouse-net/gatehouse/web"
	"github.com/gatehouse-net/gatehouse/web/httpx"
)

// APIDevices lists devices (GET) and approves one (POST).
const APIDevices = "/api/v1/devices"

// maxDeviceText bounds a device's name and the owner text.
const maxDeviceText = 64

// DeviceStore lists devices and their RADIUS side (package store).
type DeviceStore interface {
	ListDevices(ctx context.Context, f store.DeviceFilter) ([]store.Device, error)
	RADIUSDeviceByMAC(ctx context.Context, mac net.HardwareAddr) (store.RADIUSDevice, error)
	DeviceByMAC(ctx context.Context, mac net.HardwareAddr) (store.Device, error)
}

// Approver approves a device for a segment, with an optional name and
// owner; people.Service, which owns what approving means. committed true
// with an error: saved, not yet in the kernel.
type Approver interface {
	ApproveDevice(ctx context.Context, actor string, mac net.HardwareAddr, segment, name, owner string) (committed bool, err error)
}

// Errors an Approver returns that the API tells apart: the owner names
// nobody, or has lost access (people.ErrUnknownPerson, people.ErrOwnerRevoked).
type ApproverErrors struct {
	UnknownOwner, OwnerRevoked error
}

// apiDevice is a device as the API shows it.
type apiDevice struct {
	MAC         string    `json:"mac"`
	Name        string    `json:"name,omitempty"`
	Owner       string    `json:"owner,omitempty"`
	Approved    bool      `json:"approved"`
	Blocked     bool      `json:"blocked"`
	Segment     string    `json:"segment"` // the RADIUS segment it is approved for; "": its SSID's
	DHCPSegment string    `json:"dhcp_segment,omitempty"`
	IP          string    `json:"ip,omitempty"`
	Hostname    string    `json:"hostname,omitempty"`
	FirstSeen   time.Time `json:"first_seen,omitzero"`
	LastSeen    time.Time `json:"last_seen,omitzero"`
	HasKey      bool      `json:"has_key"`
	KeySetAt    time.Time `json:"key_set_at,omitzero"`
}

func (p *pages) apiListDevices(c *httpx.Context) {
	ctx := c.Request.Context()
	list, err := p.o.Devices.ListDevices(ctx, store.DeviceFilter{Limit: listLimit})
	if err != nil {
		p.log.Error("radiusweb: list devices", "err", err)
		c.JSON(http.StatusInternalServerError, httpx.H{"error": "database error"})
		return
	}
	out := make([]apiDevice, 0, len(list))
	for _, d := range list {
		r, err := p.o.Devices.RADIUSDeviceByMAC(ctx, d.MAC)
		if err != nil {
			p.log.Error("radiusweb: list devices", "mac", d.MAC, "err", err)
			c.JSON(http.StatusInternalServerError, httpx.H{"error": "database error"})
			return
		}
		a := apiDevice{MAC: d.MAC.String(), Name: d.Name, Owner: d.Owner, Approved: d.Approved, Blocked: d.Blocked,
			Segment: r.Segment, DHCPSegment: d.Segment, Hostname: d.Hostname, FirstSeen: d.FirstSeen, LastSeen: d.LastSeen,
			HasKey: r.PSKSealed != nil, KeySetAt: r.PSKSetAt}
		if d.IP.IsValid() {
			a.IP = d.IP.String()
		}
		out = append(out, a)
	}
	c.JSON(http.StatusOK, httpx.H{"devices": out})
}

// approveBody is POST /api/v1/devices's body.
type approveBody struct {
	MAC     string  `json:"mac"`
	Segment *string `json:"segment"` // required, as --segment is: "" lets the SSID decide
	Owner   string  `json:"owner"`
	Name    string  `json:"name"`
}

func deviceText(s string) (string, bool) {
	s = strings.TrimSpace(s)
	return s, utf8.RuneCountInString(s) <= maxDeviceText && strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) < 0
}

// apiApproveDevice is "gatehouse device approve" over HTTP.
func (p *pages) apiApproveDevice(c *httpx.Context) {
	var b approveBody
	if err := c.DecodeJSON(&b); err != nil {
		c.JSON(http.StatusBadRequest, httpx.H{"error": err.Error()})
		return
	}
	mac, ok := radius.ParseMAC(b.MAC)
	if !ok {
		c.JSON(http.StatusBadRequest, httpx.H{"error": "mac must be a MAC address"})
		return
	}
	if b.Segment == nil {
		c.JSON(http.StatusBadRequest, httpx.H{"error": `segment is required ("" lets the SSID decide)`})
		return
	}
	if *b.Segment != "" && !slices.Contains(p.o.Segments, *b.Segment) {
		c.JSON(http.StatusBadRequest, httpx.H{"error": fmt.Sprintf("segment %q is not configured", *b.Segment)})
		return
	}
	name, ok1 := deviceText(b.Name)
	owner, ok2 := deviceText(b.Owner)
	if !ok1 || !ok2 {
		c.JSON(http.StatusBadRequest, httpx.H{"error": fmt.Sprintf("name and owner are at most %d printable characters", maxDeviceText)})
		return
	}
	committed, err := p.o.Approver.ApproveDevice(c.Request.Context(), web.Actor(c), mac, *b.Segment, name, owner)
	e := p.o.ApproverErrors
	switch {
	case err == nil:
		c.JSON(http.StatusOK, httpx.H{"mac": mac.String(), "segment": *b.Segment, "approved": true})
	case committed:
		// Saved; the kernel takes it at the daemon's next start.
		p.log.Error("radiusweb: approve device: not applied", "mac", mac, "err", err)
		c.JSON(http.StatusAccepted, httpx.H{"mac": mac.String(), "segment": *b.Segment, "approved": true,
			"warning": "saved, but the firewall could not apply it yet; it will at the next start"})
	case e.UnknownOwner != nil && errors.Is(err, e.UnknownOwner):
		c.JSON(http.StatusUnprocessableEntity, httpx.H{"error": fmt.Sprintf("owner %q names nobody: give a UPN, admission number, staff code or username", owner)})
	case e.OwnerRevoked != nil && errors.Is(err, e.OwnerRevoked):
		c.JSON(http.StatusConflict, httpx.H{"error": "the device's owner no longer has access"})
	default:
		p.log.Error("radiusweb: approve device", "mac", mac, "err", err)
		c.JSON(http.StatusInternalServerError, httpx.H{"error": "database error"})
	}
}
