// Package radiusweb is the network role's view of the RADIUS server: the
// access points and controllers (NAS) with when they were last heard from,
// their request and drop counts and Disconnect results, and the live
// sessions (who, device, AP and room, SSID, address, since, bytes) with a
// disconnect button; plus the JSON API for the same, and for listing and
// approving devices (what approval means is package people's).
//
// It owns the pages, the API handlers and their input checks. What a
// disconnect does is package radius's (which audits it); sessions come from
// package store. Sessions, roles and CSRF are package web's.
package radiusweb

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gatehouse-net/gatehouse/web/httpx"

	"github.com/gatehouse-net/gatehouse/radius"
	"github.com/gatehouse-net/gatehouse/store"
	"github.com/gatehouse-net/gatehouse/web"
)

// Paths of the page and the API.
const (
	PagePath       = "/radius"
	DisconnectPath = "/radius/disconnect"
	RoomPath       = "/radius/room"
	CSVPath        = "/radius/sessions.csv"
	APISessions    = "/api/v1/sessions"
	APIDisconnect  = "/api/v1/sessions/:id/disconnect"
	APIDeviceKey   = "/api/v1/devices/:mac/key"
	KeyPath        = "/radius/key"
	KeyCardPath    = "/radius/key/card"
	KeyCSSPath     = "/radius/keycard.css"
)

// sessionsPageSize is how many live sessions one page of the list shows.
const sessionsPageSize = 50

// listLimit bounds one listing.
const listLimit = 500

// Sessions lists sessions and keeps the rooms access points are in
// (package store).
type Sessions interface {
	RADIUSSessions(ctx context.Context, f store.SessionFilter) ([]store.RADIUSSession, error)
	CountRADIUSSessions(ctx context.Context, f store.SessionFilter) (int, error)
	APRooms(ctx context.Context) (map[string]string, error)
	SetAPRoom(ctx context.Context, actor string, ap net.HardwareAddr, room string) error
}

// maxRoom bounds a room's name.
const maxRoom = 64

// Server is the RADIUS server as the pages use it.
type Server interface {
	NAS() []radius.NASStatus
	DisconnectSession(ctx context.Context, actor string, id int64) (radius.CoAResult, error)
}

// Keys makes personal Wi-Fi keys (radius.Keyring).
type Keys interface {
	Rotate(ctx context.Context, actor string, mac net.HardwareAddr) (string, error)
	RotateKeepingOld(ctx context.Context, actor string, mac net.HardwareAddr, keepOld time.Duration) (string, error)
}

// Options are what the pages need.
type Options struct {
	RADIUS   Server
	Sessions Sessions
	Keys     Keys // nil: no key API
	// Devices and Approver make GET and POST /api/v1/devices (both or
	// neither); Segments are the segments a device may be approved for.
	Devices        DeviceStore
	Approver       Approver
	ApproverErrors ApproverErrors
	Segments       []string
	// SSIDs are the networks a key card may name (the segments' ssids);
	// none: the card's SSID is typed in.
	SSIDs  []string
	Logger *slog.Logger
}

//go:embed templates/*.html static/keycard.css
var templates embed.FS

type pages struct {
	srv   *web.Server
	o     Options
	log   *slog.Logger
	page  *template.Template
	card  *template.Template
	cards *cardBook
}

// Register adds the page and the API, for the network role.
func Register(srv *web.Server, o Options) error {
	if srv == nil || o.RADIUS == nil || o.Sessions == nil {
		return errors.New("radiusweb: register: web server, RADIUS server and sessions are required")
	}
	p := &pages{srv: srv, o: o, log: o.Logger, cards: newCardBook()}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	funcs := template.FuncMap{
		"when": func(t time.Time) string {
			if t.IsZero() {
				return "never"
			}
			return t.Local().Format("2006-01-02 15:04:05")
		},
		"bytes": humanBytes,
	}
	var err error
	if p.page, err = template.New("radius.html").Funcs(funcs).ParseFS(templates, "templates/radius.html"); err != nil {
		return fmt.Errorf("radiusweb: parse template: %w", err)
	}
	if p.card, err = template.New("keycard.html").ParseFS(templates, "templates/keycard.html"); err != nil {
		return fmt.Errorf("radiusweb: parse template: %w", err)
	}
	network := []string{web.RoleNetwork}
	srv.AddPage(web.Page{Path: PagePath, Title: "Wi-Fi sessions", Roles: network, GET: p.show})
	srv.AddPage(web.Page{Path: DisconnectPath, Roles: network, POST: p.disconnect})
	srv.AddPage(web.Page{Path: RoomPath, Roles: network, POST: p.setRoom})
	srv.AddPage(web.Page{Path: CSVPath, Roles: network, GET: p.exportCSV})
	srv.AddAPI(http.MethodGet, APISessions, network, p.apiSessions)
	srv.AddAPI(http.MethodPost, APIDisconnect, network, p.apiDisconnect)
	if o.Keys != nil {
		srv.AddAPI(http.MethodPost, APIDeviceKey, network, p.apiRotateKey)
		srv.AddPage(web.Page{Path: KeyPath, Roles: network, POST: p.newKey})
		srv.AddPage(web.Page{Path: KeyCardPath, Roles: network, GET: p.showCard})
		srv.AddPage(web.Page{Path: KeyCSSPath, Roles: network, GET: func(c *httpx.Context) {
			b, _ := templates.ReadFile("static/keycard.css")
			c.Data(http.StatusOK, "text/css; charset=utf-8", b)
		}})
	}
	if (o.Devices == nil) != (o.Approver == nil) {
		return errors.New("radiusweb: register: the devices API needs both a device store and an approver")
	}
	if o.Devices != nil {
		srv.AddAPI(http.MethodGet, APIDevices, network, p.apiListDevices)
		srv.AddAPI(http.MethodPost, APIDevices, network, p.apiApproveDevice)
	}
	return nil
}

func humanBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatUint(n, 10) + " B"
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

type pageData struct {
	NAS      []radius.NASStatus
	Sessions []store.RADIUSSession
	Pager    web.Pager // the live sessions' pages
	Rooms    map[string]string
	AP, Room string // the room form's values, kept after an error
	// The key form: shown when keys are made here; its values kept after
	// an error.
	Keys            bool
	SSIDs           []string
	KeyMAC, KeySSID string
}

func (p *pages) show(c *httpx.Context) {
	v := p.srv.View(c, "Wi-Fi sessions")
	switch c.Query("done") {
	case radius.CoAAck:
		v.Notice = "The access point ended the session."
	case "":
	default:
		v.Error = "The access point did not confirm the disconnect (" + c.Query("done") + "); the session may still be live."
	}
	p.render(c, http.StatusOK, v)
}

func (p *pages) render(c *httpx.Context, status int, v *web.View) {
	page, ok := web.PageNumber(c)
	if !ok {
		v.Error, status = "The page number must be a positive whole number.", http.StatusBadRequest
	}
	f := store.SessionFilter{OpenOnly: true}
	total, err := p.o.Sessions.CountRADIUSSessions(c.Request.Context(), f)
	var open []store.RADIUSSession
	if err == nil {
		f.Limit, f.Offset = sessionsPageSize, (page-1)*sessionsPageSize
		open, err = p.o.Sessions.RADIUSSessions(c.Request.Context(), f)
	}
	if err != nil {
		p.log.Error("radiusweb: list sessions", "err", err)
		p.srv.RenderError(c, http.StatusInternalServerError, "The database could not be read. Try again; if it keeps failing, check the daemon's log.")
		return
	}
	rooms, err := p.o.Sessions.APRooms(c.Request.Context())
	if err != nil {
		p.log.Error("radiusweb: list rooms", "err", err)
		p.srv.RenderError(c, http.StatusInternalServerError, "The database could not be read. Try again; if it keeps failing, check the daemon's log.")
		return
	}
	d, _ := v.Data.(pageData)
	d.NAS, d.Sessions, d.Rooms = p.o.RADIUS.NAS(), open, rooms
	d.Keys, d.SSIDs = p.o.Keys != nil, p.o.SSIDs
	d.Pager = web.NewPager(PagePath, nil, page, sessionsPageSize, total)
	v.Data = d
	p.srv.Render(c, status, p.page, v)
}

// setRoom names the room an access point is in (an empty room forgets it).
func (p *pages) setRoom(c *httpx.Context) {
	apText, room := strings.TrimSpace(c.PostForm("ap")), strings.TrimSpace(c.PostForm("room"))
	fail := func(msg string) {
		v := p.srv.View(c, "Wi-Fi sessions")
		v.Error = msg
		v.Data = pageData{AP: apText, Room: room}
		p.render(c, http.StatusBadRequest, v)
	}
	ap, ok := radius.ParseMAC(apText)
	if !ok {
		fail("The access point must be given by its MAC address, as in Called-Station-Id (AA-BB-CC-DD-EE-FF).")
		return
	}
	if utf8.RuneCountInString(room) > maxRoom || strings.IndexFunc(room, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
		fail(fmt.Sprintf("A room name is at most %d printable characters.", maxRoom))
		return
	}
	if err := p.o.Sessions.SetAPRoom(c.Request.Context(), web.Actor(c), ap, room); err != nil {
		p.log.Error("radiusweb: set room", "ap", ap, "err", err)
		p.srv.RenderError(c, http.StatusInternalServerError, "The database could not be written. Try again; if it keeps failing, check the daemon's log.")
		return
	}
	c.Redirect(http.StatusSeeOther, PagePath)
}

func (p *pages) disconnect(c *httpx.Context) {
	id, err := strconv.ParseInt(c.PostForm("id"), 10, 64)
	if err != nil || id <= 0 {
		v := p.srv.View(c, "Wi-Fi sessions")
		v.Error = "No such session."
		p.render(c, http.StatusBadRequest, v)
		return
	}
	r, err := p.o.RADIUS.DisconnectSession(c.Request.Context(), web.Actor(c), id)
	if err != nil {
		v := p.srv.View(c, "Wi-Fi sessions")
		v.Error = "That session could not be found."
		p.render(c, http.StatusNotFound, v)
		return
	}
	c.Redirect(http.StatusSeeOther, PagePath+"?done="+r.Outcome)
}

// apiSession is a session as the API shows it.
type apiSession struct {
	ID            int64     `json:"id"`
	NAS           string    `json:"nas"`
	AcctSessionID string    `json:"acct_session_id"`
	Username      string    `json:"username,omitempty"`
	Person        string    `json:"person,omitempty"`
	MAC           string    `json:"mac,omitempty"`
	IP            string    `json:"ip,omitempty"`
	AP            string    `json:"ap,omitempty"`
	Room          string    `json:"room,omitempty"`
	SSID          string    `json:"ssid,omitempty"`
	Start         time.Time `json:"start"`
	Stop          time.Time `json:"stop,omitzero"`
	InOctets      uint64    `json:"in_octets"`
	OutOctets     uint64    `json:"out_octets"`
}

// APISession converts a stored session for JSON (the CLI prints the same).
func APISession(s store.RADIUSSession) apiSession {
	a := apiSession{ID: s.ID, NAS: s.NAS, AcctSessionID: s.AcctSessionID, Username: s.Username, Person: s.Person,
		AP: s.AP, Room: s.Room, SSID: s.SSID, Start: s.Start, Stop: s.Stop, InOctets: s.InOctets, OutOctets: s.OutOctets}
	if s.MAC != nil {
		a.MAC = s.MAC.String()
	}
	if s.IP.IsValid() {
		a.IP = s.IP.String()
	}
	return a
}

func (p *pages) apiSessions(c *httpx.Context) {
	f := store.SessionFilter{OpenOnly: c.Query("all") == "", Limit: listLimit}
	list, err := p.o.Sessions.RADIUSSessions(c.Request.Context(), f)
	if err != nil {
		p.log.Error("radiusweb: list sessions", "err", err)
		c.JSON(http.StatusInternalServerError, httpx.H{"error": "database error"})
		return
	}
	out := make([]apiSession, 0, len(list))
	for _, s := range list {
		out = append(out, APISession(s))
	}
	c.JSON(http.StatusOK, httpx.H{"sessions": out})
}

func (p *pages) apiDisconnect(c *httpx.Context) {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id <= 0 {
		c.JSON(http.StatusBadRequest, httpx.H{"error": "id must be a session number"})
		return
	}
	r, err := p.o.RADIUS.DisconnectSession(c.Request.Context(), web.Actor(c), id)
	if errors.Is(err, store.ErrNotFound) {
		c.JSON(http.StatusNotFound, httpx.H{"error": "no such session"})
		return
	}
	if err != nil {
		p.log.Error("radiusweb: disconnect", "id", id, "err", err)
		c.JSON(http.StatusInternalServerError, httpx.H{"error": "database error"})
		return
	}
	c.JSON(http.StatusOK, httpx.H{"outcome": r.Outcome, "nas": r.NAS, "error_cause": r.ErrorCause, "tries": r.Tries, "detail": r.Err})
}

// apiRotateKey gives a device a new personal key and returns it, once, with
// the QR payload for ?ssid= when given; ?keep_old= (72h, 7d) keeps the
// replaced key valid that long. The device must be recorded.
func (p *pages) apiRotateKey(c *httpx.Context) {
	mac, ok := radius.ParseMAC(c.Param("mac"))
	if !ok {
		c.JSON(http.StatusBadRequest, httpx.H{"error": "mac must be a MAC address"})
		return
	}
	ssid := c.Query("ssid")
	if len(ssid) > 32 {
		c.JSON(http.StatusBadRequest, httpx.H{"error": "an SSID is at most 32 bytes"})
		return
	}
	keep, err := radius.ParseOverlap(c.Query("keep_old"))
	if err != nil {
		c.JSON(http.StatusBadRequest, httpx.H{"error": "keep_old must be a duration like 72h or whole days like 7d, at most 366d"})
		return
	}
	key, err := p.o.Keys.RotateKeepingOld(c.Request.Context(), web.Actor(c), mac, keep)
	if errors.Is(err, store.ErrNotFound) {
		c.JSON(http.StatusNotFound, httpx.H{"error": "no such device; approve it first"})
		return
	}
	if err != nil {
		p.log.Error("radiusweb: rotate key", "mac", mac, "err", err)
		c.JSON(http.StatusInternalServerError, httpx.H{"error": "database error"})
		return
	}
	out := httpx.H{"mac": mac.String(), "key": key}
	if ssid != "" {
		out["wifi_qr"] = radius.WiFiQR(ssid, key)
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, out)
}

// exportCSV sends the most recent sessions, open and ended (the store's
// default bound), for a spreadsheet: local times with their offset and
// every cell formula-safe (web.SendCSV), since user names, rooms and SSIDs
// come from people and devices.
func (p *pages) exportCSV(c *httpx.Context) {
	ss, err := p.o.Sessions.RADIUSSessions(c.Request.Context(), store.SessionFilter{})
	if err != nil {
		p.log.Error("radiusweb: export sessions", "err", err)
		p.srv.RenderError(c, http.StatusInternalServerError, "The database could not be read. Try again; if it keeps failing, check the daemon's log.")
		return
	}
	rows := make([][]string, 0, len(ss))
	for _, s := range ss {
		mac, ip := "", ""
		if len(s.MAC) > 0 {
			mac = s.MAC.String()
		}
		if s.IP.IsValid() {
			ip = s.IP.String()
		}
		rows = append(rows, []string{strconv.FormatInt(s.ID, 10), p.srv.CSVTime(s.Start), p.srv.CSVTime(s.Updated), p.srv.CSVTime(s.Stop),
			s.StopCause, s.Username, s.Person, mac, ip, s.NAS, s.AP, s.Room, s.SSID,
			strconv.FormatUint(s.InOctets, 10), strconv.FormatUint(s.OutOctets, 10)})
	}
	p.srv.SendCSV(c, "wifi-sessions", []string{"id", "start", "updated", "stop", "stop_cause", "username", "person", "mac", "ip",
		"nas", "ap", "room", "ssid", "in_octets", "out_octets"}, rows)
}
