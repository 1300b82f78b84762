// Package devicesweb is the admin page of the device inventory that DHCP
// and inspection feed: a network manager lists devices with filters
// (search, segment, approved, randomised MAC, last seen) a page at a time,
// approves several at once after a confirmation, and, per device, sees its
// findings, Wi-Fi sessions and leases, approves it, names it, assigns it an
// owner, reserves it an address or blocks it.
//
// It owns the pages and their form handling only. What approving, blocking
// and owning a device mean, in the database and in the kernel together,
// belongs to package people, which the daemon hands in as the Decider; the
// page reads the inventory from the store and sends every decision there.
// Reservations are DHCP's: the page writes them through the store (audited)
// and tells the DHCP server through OnReservationsChanged. It does not own
// sessions, roles or CSRF (package web checks them before a handler runs).
package devicesweb

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gatehouse-net/gatehouse/web/httpx"

	"github.com/gatehouse-net/gatehouse/dhcp"
	"github.com/gatehouse-net/gatehouse/store"
	"github.com/gatehouse-net/gatehouse/web"
)

// Paths of the pages.
const (
	ListPath   = "/devices"
	DevicePath = "/devices/device"
	CSVPath    = "/devices.csv"
	BulkPath   = "/devices/bulk"
)

// PageSize is how many devices one page of the list shows.
const PageSize = 100

// exportLimit bounds one CSV export; a filter narrows a bigger inventory.
const exportLimit = 10_000

// maxBulk bounds how many devices one bulk action takes: a page's worth
// and then some.
const maxBulk = 500

// FindingsPath is the findings page (package findingsweb), which a device
// page links to filtered to the device.
const FindingsPath = "/findings"

// NASPage is the RADIUS page (package radiusweb), whose NAS list shows what
// each access point answered to the last Disconnect-Request.
const NASPage = "/radius"

// historyLimit bounds the sessions a device page lists.
const historyLimit = 20

// maxText bounds a device's name and owner.
const maxText = 100

// Decider stores a decision about a device (audited) and applies it to the
// router; package people's Service is one. committed reports whether the
// database change was made: an error with committed true means the router
// could not apply it yet (the daemon's restore at the next start does).
type Decider interface {
	Decide(ctx context.Context, actor string, mac net.HardwareAddr, dec store.DeviceDecision) (committed bool, err error)
}

// Store is the part of the database the pages read and write: the
// inventory, a device's findings count, Wi-Fi sessions and leases, and the
// DHCP reservations (written audited). Decisions about a device go to the
// Decider, not here. *store.Store is one; only package store speaks SQL.
type Store interface {
	// The inventory.
	ListDevices(ctx context.Context, f store.DeviceFilter) ([]store.Device, error)
	CountDevices(ctx context.Context, f store.DeviceFilter) (int, error)
	DeviceByMAC(ctx context.Context, mac net.HardwareAddr) (store.Device, error)

	// A device's history.
	CountFindings(ctx context.Context, f store.FindingFilter) (int, error)
	RADIUSSessions(ctx context.Context, f store.SessionFilter) ([]store.RADIUSSession, error)
	LeasesForMAC(ctx context.Context, mac net.HardwareAddr) ([]store.DHCPLease, error)

	// Reservations.
	DHCPReservations(ctx context.Context) ([]store.DHCPReservation, error)
	ReserveAddress(ctx context.Context, actor string, r store.DHCPReservation) error
	Unreserve(ctx context.Context, actor, segment string, mac net.HardwareAddr) error
}

// Options are what the pages need besides the web server and the store.
type Options struct {
	// Segments are the DHCP segments, for the segment filter and for
	// checking that a reserved address lies in its segment's subnet.
	Segments []dhcp.Segment
	// Devices decides approval, blocking, name and owner; required.
	Devices Decider
	// OnReservationsChanged is called after a reservation was added,
	// moved or removed (the daemon calls dhcp.Server.ReloadReservations).
	OnReservationsChanged func(ctx context.Context) error
	Logger                *slog.Logger     // nil: discard
	Now                   func() time.Time // nil: time.Now
}

//go:embed templates/*.html
var templates embed.FS

type pages struct {
	srv     *web.Server
	st      Store
	segs    []dhcp.Segment
	dec     Decider
	reload  func(ctx context.Context) error
	log     *slog.Logger
	now     func() time.Time
	list    *template.Template
	device  *template.Template
	confirm *template.Template
}

// Register adds the device pages to srv, for the network role only. Call it
// before srv is started.
func Register(srv *web.Server, st Store, opts Options) error {
	if srv == nil || st == nil || opts.Devices == nil {
		return errors.New("devicesweb: register: web server, store and a Decider are required")
	}
	p := &pages{srv: srv, st: st, segs: opts.Segments, dec: opts.Devices, reload: opts.OnReservationsChanged, log: opts.Logger, now: opts.Now}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	if p.now == nil {
		p.now = time.Now
	}
	funcs := template.FuncMap{
		"when": func(t time.Time) string {
			if t.IsZero() {
				return "never"
			}
			return t.Local().Format("2006-01-02 15:04")
		},
		"plural": web.Plural,
		"addr": func(a netip.Addr) string {
			if !a.IsValid() {
				return ""
			}
			return a.String()
		},
	}
	var err error
	if p.list, err = template.New("list.html").Funcs(funcs).ParseFS(templates, "templates/list.html"); err != nil {
		return fmt.Errorf("devicesweb: parse list template: %w", err)
	}
	if p.device, err = template.New("device.html").Funcs(funcs).ParseFS(templates, "templates/device.html"); err != nil {
		return fmt.Errorf("devicesweb: parse device template: %w", err)
	}
	if p.confirm, err = template.New("bulk.html").Funcs(funcs).ParseFS(templates, "templates/bulk.html"); err != nil {
		return fmt.Errorf("devicesweb: parse bulk template: %w", err)
	}
	network := []string{web.RoleNetwork}
	srv.AddPage(web.Page{Path: ListPath, Title: "Devices", Roles: network, GET: p.listPage, POST: p.addDevice, Menu: web.MenuDaily})
	srv.AddPage(web.Page{Path: CSVPath, Roles: network, GET: p.exportCSV})
	srv.AddPage(web.Page{Path: DevicePath, Roles: network, GET: p.devicePage, POST: p.changeDevice})
	srv.AddPage(web.Page{Path: BulkPath, Roles: network, POST: p.bulk})
	return nil
}

// filter is the list page's query, as the form sends it.
type filter struct {
	Segment    string
	Approved   string // "", "yes", "no"
	Randomised string // "", "yes", "no"
	Seen       string // "", or one of seenWindows' keys
	Q          string // search: part of the MAC, name, owner or host name
}

func addrText(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

// seenWindow is a choice of the "last seen" filter.
type seenWindow struct {
	Key, Label string
	D          time.Duration
}

func seenWindows() []seenWindow {
	return []seenWindow{
		{"1h", "in the last hour", time.Hour},
		{"24h", "in the last 24 hours", 24 * time.Hour},
		{"7d", "in the last 7 days", 7 * 24 * time.Hour},
		{"30d", "in the last 30 days", 30 * 24 * time.Hour},
	}
}

func yesNo(v string) (*bool, bool) {
	switch v {
	case "":
		return nil, true
	case "yes":
		t := true
		return &t, true
	case "no":
		f := false
		return &f, true
	}
	return nil, false
}

// storeFilter checks f and turns it into the store's filter.
func (p *pages) storeFilter(f filter) (store.DeviceFilter, string) {
	out := store.DeviceFilter{Segment: f.Segment, Q: f.Q}
	if f.Segment != "" && !slices.ContainsFunc(p.segs, func(s dhcp.Segment) bool { return s.Name == f.Segment }) {
		return out, "Choose a segment from the list."
	}
	var ok bool
	if out.Approved, ok = yesNo(f.Approved); !ok {
		return out, "Approved must be yes, no or any."
	}
	if out.Randomised, ok = yesNo(f.Randomised); !ok {
		return out, "Randomised must be yes, no or any."
	}
	if f.Seen != "" {
		i := slices.IndexFunc(seenWindows(), func(w seenWindow) bool { return w.Key == f.Seen })
		if i < 0 {
			return out, "Choose a last-seen window from the list."
		}
		out.SeenSince = p.now().Add(-seenWindows()[i].D)
	}
	return out, ""
}

type listData struct {
	Filter   filter
	Segments []string
	Windows  []seenWindow
	Devices  []store.Device
	Pager    web.Pager
	// The add form's values, kept after an error.
	MAC, Name, Owner string
}

func (p *pages) segmentNames() []string {
	var out []string
	for _, s := range p.segs {
		out = append(out, s.Name)
	}
	return out
}

func (p *pages) listPage(c *httpx.Context) {
	v := p.srv.View(c, "Devices")
	// A fixed message: a banner never repeats URL text.
	if c.Query("added") != "" {
		v.Notice = "Device recorded."
	}
	if n, err := strconv.Atoi(c.Query("approved_n")); err == nil && n > 0 {
		v.Notice = web.Plural(n, "device", "devices") + " approved."
	}
	p.renderList(c, http.StatusOK, v, queryFilter(c), listData{})
}

func queryFilter(c *httpx.Context) filter {
	return filter{Segment: c.Query("segment"), Approved: c.Query("approved"), Randomised: c.Query("randomised"), Seen: c.Query("seen"),
		Q: strings.TrimSpace(c.Query("q"))}
}

// Values is f as URL query values, for the CSV and page links.
func (f filter) Values() url.Values {
	q := url.Values{}
	for k, v := range map[string]string{"segment": f.Segment, "approved": f.Approved, "randomised": f.Randomised, "seen": f.Seen, "q": f.Q} {
		if v != "" {
			q.Set(k, v)
		}
	}
	return q
}

// Query is f as a URL query, for the CSV link.
func (f filter) Query() template.URL {
	return template.URL(f.Values().Encode()) // url.Values.Encode escapes every value
}

// devices lists what f selects: limit rows from offset, and how many
// there are in all.
func (p *pages) devices(c *httpx.Context, f filter, limit, offset int) ([]store.Device, int, string, error) {
	sf, msg := p.storeFilter(f)
	if msg != "" {
		return nil, 0, msg, nil
	}
	if len(f.Q) > 100 {
		return nil, 0, "The search is too long.", nil
	}
	ctx := c.Request.Context()
	total, err := p.st.CountDevices(ctx, sf)
	if err != nil {
		return nil, 0, "", err
	}
	sf.Limit, sf.Offset = limit, offset
	devs, err := p.st.ListDevices(ctx, sf)
	if err != nil {
		return nil, 0, "", err
	}
	return devs, total, "", nil
}

// exportCSV sends the devices the list's filters select, formula-safe,
// times in the school's zone with their offset.
func (p *pages) exportCSV(c *httpx.Context) {
	f := queryFilter(c)
	devs, _, msg, err := p.devices(c, f, exportLimit, 0)
	if err != nil {
		p.dbError(c, "export devices", err)
		return
	}
	if msg != "" {
		p.srv.RenderError(c, http.StatusBadRequest, msg)
		return
	}
	rows := make([][]string, 0, len(devs))
	for _, d := range devs {
		status := "not approved"
		switch {
		case d.Blocked:
			status = "blocked"
		case d.Approved:
			status = "approved"
		}
		rows = append(rows, []string{d.MAC.String(), d.Name, d.Owner, d.Hostname, d.Segment, addrText(d.IP), d.OS, d.Manufacturer,
			strconv.FormatBool(d.Randomised), status, p.srv.CSVTime(d.FirstSeen), p.srv.CSVTime(d.LastSeen)})
	}
	p.srv.SendCSV(c, "devices", []string{"mac", "name", "owner", "hostname", "segment", "address", "type", "manufacturer",
		"randomised", "status", "first_seen", "last_seen"}, rows)
}

func (p *pages) renderList(c *httpx.Context, status int, v *web.View, f filter, d listData) {
	page, ok := web.PageNumber(c)
	if !ok {
		v.Error = "The page number must be a positive whole number."
		status = http.StatusBadRequest
	}
	devs, total, msg, err := p.devices(c, f, PageSize, (page-1)*PageSize)
	if err == nil && msg != "" {
		v.Error = msg
		status = http.StatusBadRequest
		f, page = filter{}, 1
		devs, total, _, err = p.devices(c, f, PageSize, 0)
	}
	if err != nil {
		p.dbError(c, "list devices", err)
		return
	}
	d.Filter, d.Segments, d.Windows = f, p.segmentNames(), seenWindows()
	d.Pager = web.NewPager(ListPath, f.Values(), page, PageSize, total)
	d.Devices = devs
	v.Data = d
	p.srv.Render(c, status, p.list, v)
}

func (p *pages) dbError(c *httpx.Context, what string, err error) {
	u, _ := web.CurrentUser(c)
	p.log.Error("devicesweb: "+what, "user", u.Name, "err", err)
	p.srv.RenderError(c, http.StatusInternalServerError, "The database could not be read or written. Try again; if it keeps failing, check the daemon's log.")
}

// parseMAC accepts an Ethernet MAC in the usual notations.
func parseMAC(s string) (net.HardwareAddr, bool) {
	m, err := net.ParseMAC(strings.TrimSpace(s))
	if err != nil || len(m) != 6 {
		return nil, false
	}
	return m, true
}

// cleanText checks a name or owner: printable, bounded.
func cleanText(s string) (string, bool) {
	s = strings.TrimSpace(s)
	if !utf8.ValidString(s) || utf8.RuneCountInString(s) > maxText {
		return "", false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return "", false
		}
	}
	return s, true
}

// addDevice records a device before DHCP has seen it: a network manager
// approving a new printer ahead of its arrival, say.
func (p *pages) addDevice(c *httpx.Context) {
	v := p.srv.View(c, "Devices")
	d := listData{MAC: c.PostForm("mac"), Name: c.PostForm("name"), Owner: c.PostForm("owner")}
	fail := func(status int, msg string) {
		v.Error = msg
		p.renderList(c, status, v, filter{}, d)
	}
	mac, ok := parseMAC(d.MAC)
	if !ok {
		fail(http.StatusBadRequest, "A MAC address is six bytes, like 00:16:3e:12:34:56.")
		return
	}
	name, ok1 := cleanText(d.Name)
	owner, ok2 := cleanText(d.Owner)
	if !ok1 || !ok2 {
		fail(http.StatusBadRequest, fmt.Sprintf("Name and owner are at most %d printable characters.", maxText))
		return
	}
	ctx := c.Request.Context()
	if _, err := p.st.DeviceByMAC(ctx, mac); err == nil {
		fail(http.StatusConflict, "That device is already recorded; open it from the list to change it.")
		return
	} else if !errors.Is(err, store.ErrNotFound) {
		p.dbError(c, "look up device", err)
		return
	}
	dec := store.DeviceDecision{Approved: c.PostForm("approved") == "yes", Name: name, Owner: owner}
	if msg, status := p.decide(c, "record", mac, dec); msg != "" {
		fail(status, msg)
		return
	}
	c.Redirect(http.StatusSeeOther, ListPath+"?added=1")
}

type reservationRow struct {
	Segment string
	IP      netip.Addr
}

type deviceData struct {
	Device       store.Device
	Reservations []reservationRow
	Segments     []string
	// What the device did: its findings (counted, linked to the findings
	// page), its Wi-Fi sessions and its leases, newest first.
	Findings    int
	FindingsURL string
	Sessions    []store.RADIUSSession
	Leases      []store.DHCPLease
	// The reserve form's values, kept after an error.
	ResSegment, ResIP string
}

// deviceFor reads the device named by the "mac" parameter; ok false when
// the response was already written.
func (p *pages) deviceFor(c *httpx.Context, raw string) (store.Device, bool) {
	mac, ok := parseMAC(raw)
	if !ok {
		p.srv.RenderError(c, http.StatusBadRequest, "That is not a MAC address.")
		return store.Device{}, false
	}
	d, err := p.st.DeviceByMAC(c.Request.Context(), mac)
	if errors.Is(err, store.ErrNotFound) {
		p.srv.RenderError(c, http.StatusNotFound, "No device "+mac.String()+" is recorded.")
		return store.Device{}, false
	}
	if err != nil {
		p.dbError(c, "read device", err)
		return store.Device{}, false
	}
	return d, true
}

func (p *pages) devicePage(c *httpx.Context) {
	d, ok := p.deviceFor(c, c.Query("mac"))
	if !ok {
		return
	}
	v := p.srv.View(c, "Device "+d.MAC.String())
	if n := c.Query("done"); n != "" {
		v.Notice = doneText(n)
	}
	p.renderDevice(c, http.StatusOK, v, deviceData{Device: d})
}

// doneText is the notice after a redirect; unknown keys show nothing odd.
func doneText(k string) string {
	switch k {
	case "approve":
		return "Device approved."
	case "unapprove":
		return "Approval withdrawn."
	case "block":
		return "Device blocked: it gets no address on any segment."
	case "unblock":
		return "Block lifted."
	case "details":
		return "Name and owner saved."
	case "reserve":
		return "Address reserved."
	case "unreserve":
		return "Reservation removed."
	}
	return ""
}

func (p *pages) renderDevice(c *httpx.Context, status int, v *web.View, d deviceData) {
	rs, err := p.st.DHCPReservations(c.Request.Context())
	if err != nil {
		p.dbError(c, "list reservations", err)
		return
	}
	for _, r := range rs {
		if r.MAC.String() == d.Device.MAC.String() {
			d.Reservations = append(d.Reservations, reservationRow{Segment: r.Segment, IP: r.IP})
		}
	}
	d.Segments = p.segmentNames()
	ctx := c.Request.Context()
	mac := d.Device.MAC
	if d.Findings, err = p.st.CountFindings(ctx, store.FindingFilter{MAC: mac}); err != nil {
		p.dbError(c, "count findings", err)
		return
	}
	d.FindingsURL = FindingsPath + "?" + url.Values{"device": {mac.String()}}.Encode()
	if d.Sessions, err = p.st.RADIUSSessions(ctx, store.SessionFilter{MAC: mac, Limit: historyLimit}); err != nil {
		p.dbError(c, "list sessions", err)
		return
	}
	if d.Leases, err = p.st.LeasesForMAC(ctx, mac); err != nil {
		p.dbError(c, "list leases", err)
		return
	}
	if d.ResSegment == "" {
		d.ResSegment = d.Device.Segment
	}
	v.Data = d
	p.srv.Render(c, status, p.device, v)
}

// decide hands a decision to the Decider. It returns a message and status
// for the page when the change was refused or could not be applied.
func (p *pages) decide(c *httpx.Context, what string, mac net.HardwareAddr, dec store.DeviceDecision) (string, int) {
	committed, err := p.dec.Decide(c.Request.Context(), web.Actor(c), mac, dec)
	if err == nil {
		return "", 0
	}
	u, _ := web.CurrentUser(c)
	p.log.Error("devicesweb: decide", "change", what, "mac", mac, "user", u.Name, "committed", committed, "err", err)
	if !committed {
		return "The change was not made: " + err.Error() + ".", http.StatusConflict
	}
	var unconfirmed interface{ SessionNotEnded() }
	if errors.As(err, &unconfirmed) {
		// The router has cut the device; only the access point's
		// confirmation is missing, and a restart would not resend it.
		// Its error says so (package people's SessionNotEndedError).
		return "The change is saved and the router has cut the device off, but " + err.Error() +
			". A restart would not resend it: see the NAS list on the RADIUS page (" + NASPage + ") for the access point's answers.", http.StatusBadGateway
	}
	return "The change is saved, but the router could not apply it yet (" + err.Error() + "). It applies when the daemon restarts; check the daemon's log.", http.StatusInternalServerError
}

// changeDevice applies one action from the device page's forms.
func (p *pages) changeDevice(c *httpx.Context) {
	d, ok := p.deviceFor(c, c.PostForm("mac"))
	if !ok {
		return
	}
	ctx := c.Request.Context()
	action := c.PostForm("action")
	v := p.srv.View(c, "Device "+d.MAC.String())
	fail := func(status int, msg string, dd deviceData) {
		v.Error = msg
		dd.Device = d
		p.renderDevice(c, status, v, dd)
	}
	dec := store.DeviceDecision{Approved: d.Approved, Blocked: d.Blocked, Name: d.Name, Owner: d.Owner}
	switch action {
	case "approve":
		dec.Approved = true
	case "unapprove":
		dec.Approved = false
	case "block":
		dec.Blocked = true
	case "unblock":
		dec.Blocked = false
	case "details":
		name, ok1 := cleanText(c.PostForm("name"))
		owner, ok2 := cleanText(c.PostForm("owner"))
		if !ok1 || !ok2 {
			fail(http.StatusBadRequest, fmt.Sprintf("Name and owner are at most %d printable characters.", maxText), deviceData{})
			return
		}
		dec.Name, dec.Owner = name, owner
	case "reserve":
		p.reserve(c, d, fail)
		return
	case "unreserve":
		p.unreserve(c, d, fail)
		return
	default:
		fail(http.StatusBadRequest, "Unknown action.", deviceData{})
		return
	}
	if dec == (store.DeviceDecision{Approved: d.Approved, Blocked: d.Blocked, Name: d.Name, Owner: d.Owner}) {
		// Nothing changes: no audit entry, no kernel call.
		c.Redirect(http.StatusSeeOther, deviceURL(d.MAC, action))
		return
	}
	if msg, status := p.decide(c, action, d.MAC, dec); msg != "" {
		if d2, err := p.st.DeviceByMAC(ctx, d.MAC); err == nil {
			d = d2
		}
		fail(status, msg, deviceData{})
		return
	}
	c.Redirect(http.StatusSeeOther, deviceURL(d.MAC, action))
}

func deviceURL(mac net.HardwareAddr, done string) string {
	return DevicePath + "?mac=" + url.QueryEscape(mac.String()) + "&done=" + url.QueryEscape(done)
}

func (p *pages) segment(name string) (dhcp.Segment, bool) {
	i := slices.IndexFunc(p.segs, func(s dhcp.Segment) bool { return s.Name == name })
	if i < 0 {
		return dhcp.Segment{}, false
	}
	return p.segs[i], true
}

// reservable says what is wrong with reserving ip on seg, or "".
func reservable(seg dhcp.Segment, ip netip.Addr) string {
	net4 := seg.Subnet.Masked().Addr()
	bc := net4.As4()
	hostBits := 32 - seg.Subnet.Bits()
	for i := 3; i >= 0 && hostBits > 0; i-- {
		n := min(hostBits, 8)
		bc[i] |= byte(1<<n - 1)
		hostBits -= n
	}
	switch {
	case !ip.Is4() || !seg.Subnet.Contains(ip):
		return fmt.Sprintf("The address must lie in %s's subnet %v.", seg.Name, seg.Subnet)
	case ip == net4 || ip == netip.AddrFrom4(bc):
		return "The subnet's network and broadcast addresses cannot be reserved."
	case ip == seg.Gateway || (seg.ServerID.IsValid() && ip == seg.ServerID):
		return "That is the router's own address."
	}
	return ""
}

func (p *pages) reserve(c *httpx.Context, d store.Device, fail func(int, string, deviceData)) {
	dd := deviceData{ResSegment: c.PostForm("segment"), ResIP: strings.TrimSpace(c.PostForm("ip"))}
	seg, ok := p.segment(dd.ResSegment)
	if !ok {
		fail(http.StatusBadRequest, "Choose a segment from the list.", dd)
		return
	}
	ip, err := netip.ParseAddr(dd.ResIP)
	if err != nil {
		fail(http.StatusBadRequest, "That is not an IPv4 address.", dd)
		return
	}
	if msg := reservable(seg, ip); msg != "" {
		fail(http.StatusBadRequest, msg, dd)
		return
	}
	err = p.st.ReserveAddress(c.Request.Context(), web.Actor(c), store.DHCPReservation{Segment: seg.Name, MAC: d.MAC, IP: ip})
	if errors.Is(err, store.ErrExists) {
		fail(http.StatusConflict, ip.String()+" is already reserved for another device on "+seg.Name+".", dd)
		return
	}
	if err != nil {
		p.dbError(c, "reserve address", err)
		return
	}
	if msg := p.reloadReservations(c); msg != "" {
		fail(http.StatusInternalServerError, msg, deviceData{})
		return
	}
	c.Redirect(http.StatusSeeOther, deviceURL(d.MAC, "reserve"))
}

func (p *pages) unreserve(c *httpx.Context, d store.Device, fail func(int, string, deviceData)) {
	seg := c.PostForm("segment")
	err := p.st.Unreserve(c.Request.Context(), web.Actor(c), seg, d.MAC)
	if errors.Is(err, store.ErrNotFound) {
		fail(http.StatusNotFound, "The device has no reservation on that segment.", deviceData{})
		return
	}
	if err != nil {
		p.dbError(c, "remove reservation", err)
		return
	}
	if msg := p.reloadReservations(c); msg != "" {
		fail(http.StatusInternalServerError, msg, deviceData{})
		return
	}
	c.Redirect(http.StatusSeeOther, deviceURL(d.MAC, "unreserve"))
}

func (p *pages) reloadReservations(c *httpx.Context) string {
	if p.reload == nil {
		return ""
	}
	if err := p.reload(c.Request.Context()); err != nil {
		u, _ := web.CurrentUser(c)
		p.log.Error("devicesweb: reload reservations", "user", u.Name, "err", err)
		return "The reservation is saved, but the DHCP server could not reload it yet (" + err.Error() + "). It applies when the daemon restarts."
	}
	return ""
}

type bulkData struct {
	Devices []store.Device // the selected devices not yet approved
	Already int            // selected devices already approved
	Blocked int            // selected devices that stay blocked
	Back    string         // the list the selection was made on
}

// bulk approves the devices ticked on the list. The first POST (from the
// list) only shows what will happen and asks again; the second, with
// confirm=yes, approves each device through the Decider (each change
// audited) and redirects back to the list (post/redirect/get).
func (p *pages) bulk(c *httpx.Context) {
	if c.PostForm("action") != "approve" {
		p.srv.RenderError(c, http.StatusBadRequest, "Unknown action.")
		return
	}
	_ = c.PostForm("mac") // parses the body
	raw := c.Request.PostForm["mac"]
	back := ListPath
	if q := c.PostForm("back"); q != "" {
		if vals, err := url.ParseQuery(q); err == nil {
			f := filter{Segment: vals.Get("segment"), Approved: vals.Get("approved"), Randomised: vals.Get("randomised"), Seen: vals.Get("seen"), Q: vals.Get("q")}
			if enc := f.Values().Encode(); enc != "" {
				back = ListPath + "?" + enc
			}
		}
	}
	v := p.srv.View(c, "Approve devices")
	if len(raw) == 0 {
		v.Error = "Tick the devices to approve first."
		p.renderList(c, http.StatusBadRequest, v, filter{}, listData{})
		return
	}
	if len(raw) > maxBulk {
		p.srv.RenderError(c, http.StatusBadRequest, fmt.Sprintf("Approve at most %d devices at a time.", maxBulk))
		return
	}
	ctx := c.Request.Context()
	var d bulkData
	seen := map[string]bool{}
	for _, r := range raw {
		mac, ok := parseMAC(r)
		if !ok {
			p.srv.RenderError(c, http.StatusBadRequest, "That is not a MAC address.")
			return
		}
		if seen[mac.String()] {
			continue
		}
		seen[mac.String()] = true
		dev, err := p.st.DeviceByMAC(ctx, mac)
		if errors.Is(err, store.ErrNotFound) {
			continue // gone since the list was shown
		}
		if err != nil {
			p.dbError(c, "read device", err)
			return
		}
		switch {
		case dev.Approved:
			d.Already++
		default:
			if dev.Blocked {
				d.Blocked++
			}
			d.Devices = append(d.Devices, dev)
		}
	}
	d.Back = back
	if c.PostForm("confirm") != "yes" || len(d.Devices) == 0 {
		v.Data = d
		p.srv.Render(c, http.StatusOK, p.confirm, v)
		return
	}
	done := 0
	for _, dev := range d.Devices {
		dec := store.DeviceDecision{Approved: true, Blocked: dev.Blocked, Name: dev.Name, Owner: dev.Owner}
		if msg, status := p.decide(c, "approve", dev.MAC, dec); msg != "" {
			v.Error = fmt.Sprintf("%s approved; then %s: %s", web.Plural(done, "device was", "devices were"), dev.MAC, msg)
			p.renderList(c, status, v, filter{}, listData{})
			return
		}
		done++
	}
	sep := "?"
	if strings.Contains(back, "?") {
		sep = "&"
	}
	c.Redirect(http.StatusSeeOther, back+sep+"approved_n="+strconv.Itoa(done))
}
