package people

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse-net/gatehouse/events"
	"github.com/gatehouse-net/gatehouse/policy"
	"github.com/gatehouse-net/gatehouse/store"
)

// Kernel is the part of policy.Enforcer that approval, blocking and
// revocation change.
type Kernel interface {
	Approve(ctx context.Context, d policy.Device) error
	Unapprove(ctx context.Context, d policy.Device) error
	Quarantine(ctx context.Context, d policy.Device) error
	Release(ctx context.Context, d policy.Device) error
	Revoke(ctx context.Context, devices ...policy.Device) error
	Reinstate(ctx context.Context, devices ...policy.Device) error
}

var _ Kernel = (*policy.Enforcer)(nil)

// Disconnector ends a device's live RADIUS sessions (a Disconnect-Request
// to the access point holding it) when it is blocked, its approval is
// withdrawn or its owner's access is revoked. Package radius's
// MACDisconnector satisfies it.
type Disconnector interface {
	Disconnect(ctx context.Context, mac net.HardwareAddr) error
}

// Reauthorizer changes a device's live RADIUS sessions whose authorisation
// changed without ending: a device moved to another segment is moved to
// that segment's VLAN by a CoA-Request (package radius's MACReauthorizer,
// which disconnects the session instead when the access point refuses).
// Revoking and blocking stay with Disconnector.
type Reauthorizer interface {
	MoveSegment(ctx context.Context, mac net.HardwareAddr, segment string) error
}

// LeaseReleaser forgets a device's DHCP leases so its address goes back to
// the pool: a blocked device's (the DHCP server refuses it a new one) and a
// device's whose approval was withdrawn (it gets one as its segment treats
// strangers).
type LeaseReleaser interface {
	ReleaseMAC(ctx context.Context, mac net.HardwareAddr) error
}

// Credentials disables what a person signs in with on the network: their
// personal Wi-Fi keys, Wi-Fi passwords and client certificates (package
// radius keeps them).
type Credentials interface {
	DisablePerson(ctx context.Context, personID int64) error
}

// CredentialSet is several keepers of credentials as one (personal keys in
// radius, client certificates in pki): each is disabled, even when one
// before it fails, and the failures are returned together.
type CredentialSet []Credentials

// DisablePerson disables the person's credentials in every keeper.
func (cs CredentialSet) DisablePerson(ctx context.Context, personID int64) error {
	var errs []error
	for _, c := range cs {
		if c != nil {
			errs = append(errs, c.DisablePerson(ctx, personID))
		}
	}
	return errors.Join(errs...)
}

// Mailer sends the leavers preview to the network manager and the DSL
// (package alert's mailer, whose SendMailTo this is). ErrNoMailer from it
// means no mail is set up: the preview stays on the admin page only and is
// not marked sent.
type Mailer interface {
	SendMailTo(ctx context.Context, to []string, subject, body string) error
}

// ErrNoMailer is what a Mailer returns when no mail server is configured.
var ErrNoMailer = errors.New("people: no mail server is configured")

// Options are the service's dependencies and settings. Store is required;
// every interface may be nil until the component behind it is wired.
type Options struct {
	Store        *store.Store
	Kernel       Kernel
	Disconnector Disconnector
	Reauthorizer Reauthorizer
	Leases       LeaseReleaser
	Credentials  Credentials
	Mailer       Mailer
	// NetworkManagers are the network manager's addresses for the leavers
	// preview (people.leavers_preview_to); empty: the addresses of the
	// enabled admin accounts with the network role
	// (store.NetworkManagerEmails), read when the preview is sent.
	NetworkManagers []string
	// DSL are the DSL's addresses (alerts.dsl); the preview goes to them
	// too.
	DSL    []string
	Hub    *events.Hub
	Logger *slog.Logger
	// Location is the school's time zone: leaving days end at its
	// midnight. Default time.Local.
	Location *time.Location
	// Now is the clock; default time.Now.
	Now func() time.Time
	// MaxLeavers is the safety threshold: a scheduled import applies only
	// when fewer people would leave than this. 0: 5% of the people the
	// import covers, and at least 5.
	MaxLeavers int
	// Grace delays the end of access for members of a group (by group
	// name: "Year 13", "staff") after their leaving day; default none.
	Grace map[string]time.Duration
	// Retention is how long people who left are kept; default one year.
	Retention time.Duration
	// NoticeDays is how far ahead the leavers preview looks; default 14.
	NoticeDays int
	// QuarantineSegments are the segments whose unknown devices are
	// quarantined, for Restore.
	QuarantineSegments []string
	// NTHashes, when set, makes every Wi-Fi password also stored as a
	// sealed NT hash for MSCHAPv2 (PEAP, TTLS-MSCHAPv2); nil (MSCHAPv2 not
	// enabled) stores none, and ClearNTHashes removes any left over.
	NTHashes *NTSealer
	// OnChange is called after people, groups or devices change, so the
	// enforcer can re-resolve person and group rules (policy Sync).
	OnChange func(ctx context.Context) error
}

// Service is the people component.
type Service struct {
	st    *store.Store
	opts  Options
	log   *slog.Logger
	loc   *time.Location
	now   func() time.Time
	cal   calendar
	calMu sync.RWMutex

	// self limits the self-service Wi-Fi password page's wrong attempts.
	self selfService

	// warnedNoRecipients: the leavers preview had nobody to go to, and
	// the log has said so.
	warnedNoRecipients atomic.Bool

	// revokeMu serialises revocations, so the scheduler and a "revoke now"
	// never work on one person at once.
	revokeMu sync.Mutex
}

// New checks opts and returns the service; Load reads the calendar.
func New(opts Options) (*Service, error) {
	if opts.Store == nil {
		return nil, errors.New("people: a store is required")
	}
	s := &Service{st: opts.Store, opts: opts, log: opts.Logger, loc: opts.Location, now: opts.Now}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.log = s.log.With("component", "people")
	if s.loc == nil {
		s.loc = time.Local
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.opts.Retention <= 0 {
		s.opts.Retention = 365 * 24 * time.Hour
	}
	if s.opts.NoticeDays <= 0 {
		s.opts.NoticeDays = 14
	}
	return s, nil
}

// Store returns the store the service writes through, for pages.
func (s *Service) Store() *store.Store { return s.st }

// Location is the school's time zone.
func (s *Service) Location() *time.Location { return s.loc }

// Now is the service's clock.
func (s *Service) Now() time.Time { return s.now() }

// Load reads the term calendar into memory (InTerm must not block on the
// database).
func (s *Service) Load(ctx context.Context) error {
	terms, err := s.st.Terms(ctx)
	if err != nil {
		return fmt.Errorf("people: load calendar: %w", err)
	}
	holidays, err := s.st.Holidays(ctx)
	if err != nil {
		return fmt.Errorf("people: load calendar: %w", err)
	}
	s.calMu.Lock()
	s.cal = newCalendar(terms, holidays)
	s.calMu.Unlock()
	return nil
}

func (s *Service) changed(ctx context.Context) error {
	if s.opts.OnChange == nil {
		return nil
	}
	if err := s.opts.OnChange(ctx); err != nil {
		return fmt.Errorf("people: apply the change to the rules: %w", err)
	}
	return nil
}

// publishRevoked tells the hub a person's revocation is done.
func (s *Service) publishRevoked(rv store.Revocation) {
	ev := events.PersonRevoked{RevocationID: rv.ID, PersonID: rv.PersonID, Reason: rv.Reason, At: s.now()}
	for _, d := range rv.Devices {
		if mac, err := net.ParseMAC(d.MAC); err == nil {
			ev.Devices = append(ev.Devices, mac)
		}
	}
	events.Publish(s.opts.Hub, ev)
}

// DisplayName is how pages and alerts name a person.
func DisplayName(p store.Person) string {
	f := p.PreferredForename
	if f == "" {
		f = p.LegalForename
	}
	if f == "" {
		return p.LegalSurname
	}
	if p.LegalSurname == "" {
		return f
	}
	return f + " " + p.LegalSurname
}

// Key is the id a person is best known by: UPN, staff code, admission
// number or username.
func Key(p store.Person) string {
	for _, k := range []string{p.UPN, p.StaffCode, p.AdmissionNo, p.Username} {
		if k != "" {
			return k
		}
	}
	return fmt.Sprint(p.ID)
}
