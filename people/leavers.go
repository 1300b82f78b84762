package people

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	"time"

	"github.com/gatehouse-net/gatehouse/policy"
	"github.com/gatehouse-net/gatehouse/store"
)

// Departure is when one person's access ends and why.
type Departure struct {
	Person store.Person
	Day    string    // the local day whose end is T0 (leaving day, postponed day or term end)
	At     time.Time // T0 plus any grace
	Why    string
}

// departure works out when a person with access loses it; ok false for
// people with no end.
func (s *Service) departure(ctx context.Context, p store.Person) (Departure, bool, error) {
	return s.departureIn(p, func() ([]string, error) { return s.st.GroupsOf(ctx, p.ID) })
}

// departureIn is departure with p's custom groups from groups, called only
// when a grace window needs them (a caller that read them with p passes
// them in rather than have them read again).
func (s *Service) departureIn(p store.Person, groups func() ([]string, error)) (Departure, bool, error) {
	if p.State != store.PersonActive && p.State != store.PersonLeaving {
		return Departure{}, false, nil
	}
	d := Departure{Person: p}
	switch {
	case p.PostponedTo != "":
		d.Day, d.Why = p.PostponedTo, "postponed: "+p.PostponeReason
	case p.LeavesOn != "":
		d.Day, d.Why = p.LeavesOn, "leaving day"
		if p.LeftOn != "" {
			d.Why = "no longer in the MIS"
		}
	case p.LeavesAtTermEnd:
		s.calMu.RLock()
		d.Day = s.cal.termEnd(s.today())
		s.calMu.RUnlock()
		d.Why = "leaves at the end of term"
		if d.Day == "" {
			return Departure{}, false, nil // no calendar yet: nothing to count from
		}
	default:
		return Departure{}, false, nil
	}
	at, err := endOfDay(d.Day, s.loc)
	if err != nil {
		return Departure{}, false, fmt.Errorf("people: person %d: leaving day %q: %w", p.ID, d.Day, err)
	}
	g, err := s.grace(p, groups)
	if err != nil {
		return Departure{}, false, err
	}
	d.At = at.Add(g)
	return d, true, nil
}

// grace is the longest grace window of the groups a person is in.
func (s *Service) grace(p store.Person, groups func() ([]string, error)) (time.Duration, error) {
	if len(s.opts.Grace) == 0 {
		return 0, nil
	}
	names := []string{p.Kind, p.YearGroup, p.RegGroup}
	if p.Kind == "pupil" {
		names = append(names, "pupils")
	}
	custom, err := groups()
	if err != nil {
		return 0, err
	}
	names = append(names, custom...)
	var g time.Duration
	for want, d := range s.opts.Grace {
		for _, n := range names {
			if n != "" && strings.EqualFold(n, want) && d > g {
				g = d
			}
		}
	}
	return g, nil
}

// Departures returns everyone who will lose access before until, soonest
// first (the "leavers ahead" page and the T-14 preview).
func (s *Service) Departures(ctx context.Context, until time.Time) ([]Departure, error) {
	ps, err := s.st.ListPeople(ctx, store.PeopleFilter{States: []string{store.PersonActive, store.PersonLeaving}})
	if err != nil {
		return nil, err
	}
	var out []Departure
	for _, p := range ps {
		d, ok, err := s.departure(ctx, p)
		if err != nil {
			return nil, err
		}
		if ok && d.At.Before(until) {
			out = append(out, d)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].At.Before(out[j].At) })
	return out, nil
}

// TickResult is what one run of the scheduler did.
type TickResult struct {
	Revoked  int
	Finished int // interrupted revocations completed
	Notified int
	Purged   int64
	Next     time.Time // the next departure, zero if none is known
}

// Tick does everything due at the clock's now: it finishes revocations a
// crash interrupted, revokes everyone whose access has ended (catching up
// after the router was off), sends the leavers preview for departures in
// the notice window, and purges people whose retention has run out.
func (s *Service) Tick(ctx context.Context) (TickResult, error) {
	var res TickResult
	var errs []error
	n, err := s.Resume(ctx)
	res.Finished = n
	errs = append(errs, err)
	now := s.now()
	ds, err := s.Departures(ctx, now.AddDate(0, 0, s.opts.NoticeDays+1))
	if err != nil {
		return res, err
	}
	var notice []Departure
	for _, d := range ds {
		if !d.At.After(now) {
			if _, err := s.revoke(ctx, "scheduler", d.Person.ID, d.Why+" "+d.Day); err != nil && !errors.Is(err, store.ErrConflict) {
				errs = append(errs, err)
				continue
			}
			res.Revoked++
			continue
		}
		if res.Next.IsZero() || d.At.Before(res.Next) {
			res.Next = d.At
		}
		if d.At.Sub(now) <= time.Duration(s.opts.NoticeDays)*24*time.Hour && d.Person.NotifiedFor != d.Day {
			notice = append(notice, d)
		}
	}
	if len(notice) > 0 && s.opts.Mailer != nil {
		if err := s.notify(ctx, notice); errors.Is(err, ErrNoMailer) {
			// The admin page's leavers list is the preview.
		} else if err != nil {
			errs = append(errs, err)
		} else {
			res.Notified = len(notice)
		}
	}
	cutoff := now.In(s.loc).Add(-s.opts.Retention).Format(dayLayout)
	for {
		n, err := s.st.PurgePeople(ctx, "scheduler", cutoff, now)
		res.Purged += n
		if err != nil {
			errs = append(errs, err)
			break
		}
		if n < 5000 {
			break
		}
	}
	if res.Revoked > 0 || res.Purged > 0 {
		errs = append(errs, s.changed(ctx))
	}
	return res, errors.Join(errs...)
}

// notify mails the leavers preview and remembers, per person, the day it
// was sent for, so each departure is announced once.
func (s *Service) notify(ctx context.Context, ds []Departure) error {
	var b strings.Builder
	fmt.Fprintf(&b, "These people lose network access soon (times are %s):\n\n", s.loc)
	for _, d := range ds {
		fmt.Fprintf(&b, "%s  %s (%s, %s) - %s\n", d.At.In(s.loc).Format("Mon 2 Jan 2006 15:04"), DisplayName(d.Person),
			Key(d.Person), groupLabel(d.Person), d.Why)
	}
	b.WriteString("\nTo postpone one (a leaving date the MIS got wrong), open the person on the admin page.\n")
	who := fmt.Sprintf("%d people", len(ds))
	if len(ds) == 1 {
		who = "1 person"
	}
	subject := fmt.Sprintf("Gatehouse: %s will lose network access in the next %d days", who, s.opts.NoticeDays)
	to, err := s.PreviewRecipients(ctx)
	if err != nil {
		return err
	}
	if len(to) == 0 {
		// Once per process: the scheduler asks again every minute.
		if !s.warnedNoRecipients.Swap(true) {
			s.log.Warn("leavers preview not mailed: no address for the network manager (people.leavers_preview_to, or an admin account with the network role) or the DSL (alerts.dsl); it stays on the Leavers page")
		}
		return ErrNoMailer
	}
	if err := s.opts.Mailer.SendMailTo(ctx, to, subject, b.String()); err != nil {
		return fmt.Errorf("people: send leavers preview: %w", err)
	}
	for _, d := range ds {
		p := d.Person
		p.NotifiedFor = d.Day
		if _, err := s.st.UpdatePerson(ctx, "scheduler", "person.notified", p, s.now()); err != nil {
			return err
		}
	}
	return nil
}

// PreviewRecipients are the addresses the leavers preview goes to: the
// network manager's (Options.NetworkManagers, or by default the network
// role's admin accounts' addresses) and the DSL's, each once.
func (s *Service) PreviewRecipients(ctx context.Context) ([]string, error) {
	nm := s.opts.NetworkManagers
	if len(nm) == 0 {
		var err error
		if nm, err = s.st.NetworkManagerEmails(ctx); err != nil {
			return nil, fmt.Errorf("people: leavers preview recipients: %w", err)
		}
	}
	seen := map[string]bool{}
	var out []string
	for _, a := range append(append([]string(nil), nm...), s.opts.DSL...) {
		a = strings.TrimSpace(a)
		if a == "" || seen[strings.ToLower(a)] {
			continue
		}
		seen[strings.ToLower(a)] = true
		out = append(out, a)
	}
	return out, nil
}

func groupLabel(p store.Person) string {
	if p.Kind == "staff" {
		if p.Role != "" {
			return "staff, " + p.Role
		}
		return "staff"
	}
	if p.RegGroup != "" {
		return p.YearGroup + ", " + p.RegGroup
	}
	return p.YearGroup
}

// RevokeNow ends a person's access at once (a dismissed member of staff).
func (s *Service) RevokeNow(ctx context.Context, actor string, id int64, reason string) (store.Revocation, error) {
	rv, err := s.revoke(ctx, actor, id, "revoked now: "+reason)
	if err == nil {
		err = s.changed(ctx)
	}
	return rv, err
}

// revoke writes the revocation (the person, their devices and admin
// accounts) in one transaction and then does what lies outside the
// database. If that second part fails or the process dies, the revocation
// stays pending and Resume finishes it.
func (s *Service) revoke(ctx context.Context, actor string, id int64, reason string) (store.Revocation, error) {
	s.revokeMu.Lock()
	defer s.revokeMu.Unlock()
	rv, err := s.st.RevokePerson(ctx, actor, id, reason, s.now())
	if err != nil {
		return rv, err
	}
	s.log.Info("access revoked", "person", id, "by", actor, "reason", reason, "devices", len(rv.Devices), "admin accounts", rv.Users)
	return rv, s.finish(ctx, rv)
}

// revocationDone is what the audit row of a finished revocation records.
type revocationDone struct {
	Devices      int      `json:"devices"`
	Disconnected int      `json:"disconnected"`
	Failures     []string `json:"failures,omitempty"`
	Credentials  bool     `json:"credentials_disabled"`
}

// finish applies a revocation outside the database: the kernel's revoked
// set for every device (which also cuts their connections), a RADIUS
// Disconnect and a lease release for each, and the person's network
// credentials disabled. The kernel must succeed for the revocation to be
// marked finished; a RADIUS or DHCP failure is recorded but does not hold
// it back, since the kernel has already cut the device.
func (s *Service) finish(ctx context.Context, rv store.Revocation) error {
	var devs []policy.Device
	var macs []net.HardwareAddr
	for _, d := range rv.Devices {
		mac, err := net.ParseMAC(d.MAC)
		if err != nil {
			continue
		}
		pd := policy.Device{MAC: mac}
		if ip, err := parseIP(d.IP); err == nil {
			pd.IP = ip
		}
		devs = append(devs, pd)
		macs = append(macs, mac)
	}
	if len(devs) > 0 {
		if s.opts.Kernel == nil {
			return errors.New("people: revoke: no kernel to refuse the devices")
		}
		if err := s.opts.Kernel.Revoke(ctx, devs...); err != nil {
			return fmt.Errorf("people: revoke person %d in the kernel: %w", rv.PersonID, err)
		}
	}
	done := revocationDone{Devices: len(devs)}
	for _, mac := range macs {
		var errs []error
		unconfirmed := s.cutSessions(ctx, mac, &errs)
		if err := errors.Join(append(errs, unconfirmed)...); err != nil {
			done.Failures = append(done.Failures, err.Error())
			s.log.Warn("revocation: session not cut; the kernel refuses the device meanwhile", "mac", mac, "err", err)
		} else if s.opts.Disconnector != nil {
			done.Disconnected++
		}
	}
	if s.opts.Credentials != nil && rv.PersonID != 0 {
		if err := s.opts.Credentials.DisablePerson(ctx, rv.PersonID); err != nil {
			return fmt.Errorf("people: disable credentials of person %d: %w", rv.PersonID, err)
		}
		done.Credentials = true
	}
	if err := s.st.FinishRevocation(ctx, "scheduler", rv.ID, done, s.now()); err != nil {
		return err
	}
	s.publishRevoked(rv)
	return nil
}

// Resume finishes revocations that a crash or restart interrupted; the
// daemon calls it (through Tick) at start, after the kernel's table is in.
func (s *Service) Resume(ctx context.Context) (int, error) {
	s.revokeMu.Lock()
	defer s.revokeMu.Unlock()
	pend, err := s.st.PendingRevocations(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	for _, rv := range pend {
		if err := s.finish(ctx, rv); err != nil {
			errs = append(errs, err)
			continue
		}
		s.log.Info("interrupted revocation finished", "person", rv.PersonID, "revocation", rv.ID)
		n++
	}
	return n, errors.Join(errs...)
}

// Postpone moves one person's end of access to a new day, with a reason
// (a leaving date the MIS got wrong). The day must not be in the past.
func (s *Service) Postpone(ctx context.Context, actor string, id int64, day, reason string) (store.Person, error) {
	d, ok := parseDay(day, dayLayout)
	if !ok || d == "" {
		return store.Person{}, fmt.Errorf("people: postpone: %q is not a date (YYYY-MM-DD)", day)
	}
	reason, ok = cleanValue(reason)
	if !ok || reason == "" {
		return store.Person{}, errors.New("people: postpone: give a reason")
	}
	if d < s.today() {
		return store.Person{}, fmt.Errorf("people: postpone: %s is in the past", d)
	}
	p, err := s.st.PersonByID(ctx, id)
	if err != nil {
		return store.Person{}, err
	}
	if p.State != store.PersonActive && p.State != store.PersonLeaving {
		return store.Person{}, fmt.Errorf("people: postpone: %s has already lost access (reinstate them first): %w", DisplayName(p), store.ErrConflict)
	}
	p.PostponedTo, p.PostponeReason, p.State = d, reason, store.PersonLeaving
	return s.st.UpdatePerson(ctx, actor, "person.postpone", p, s.now())
}

// Hold sets or lifts a records hold: a held person's records outlive the
// retention period (their access still ends on time).
func (s *Service) Hold(ctx context.Context, actor string, id int64, hold bool, reason string) (store.Person, error) {
	reason, ok := cleanValue(reason)
	if !ok || (hold && reason == "") {
		return store.Person{}, errors.New("people: records hold: give a reason")
	}
	p, err := s.st.PersonByID(ctx, id)
	if err != nil {
		return store.Person{}, err
	}
	p.RecordsHold, p.HoldReason = hold, reason
	if !hold {
		p.HoldReason = ""
	}
	return s.st.UpdatePerson(ctx, actor, "person.hold", p, s.now())
}

// Reinstate gives a revoked person their access back (a revocation made in
// error): their devices regain the approval they had. Admin accounts stay
// disabled until re-enabled by hand.
func (s *Service) Reinstate(ctx context.Context, actor string, id int64) error {
	s.revokeMu.Lock()
	defer s.revokeMu.Unlock()
	p, err := s.st.PersonByID(ctx, id)
	if err != nil {
		return err
	}
	state := store.PersonActive
	if p.LeavesOn != "" && p.LeavesOn >= s.today() {
		state = store.PersonLeaving
	}
	devs, err := s.st.ReinstatePerson(ctx, actor, id, state, s.now())
	if err != nil {
		return err
	}
	// Without a new leaving day the scheduler would revoke them again
	// at once; a past leaving day is cleared.
	if p2, err := s.st.PersonByID(ctx, id); err == nil && p2.LeavesOn != "" && p2.LeavesOn < s.today() && p2.PostponedTo < s.today() {
		p2.LeavesOn, p2.PostponedTo, p2.LeftOn = "", "", ""
		p2.State = store.PersonActive
		if _, err := s.st.UpdatePerson(ctx, actor, "person.update", p2, s.now()); err != nil {
			return err
		}
	}
	var errs []error
	if k := s.opts.Kernel; k != nil {
		for _, d := range devs {
			if d.WasBlocked {
				continue
			}
			mac, err := net.ParseMAC(d.MAC)
			if err != nil {
				continue
			}
			pd := policy.Device{MAC: mac}
			if ip, err := parseIP(d.IP); err == nil {
				pd.IP = ip
			}
			errs = append(errs, k.Reinstate(ctx, pd))
			if d.WasApproved {
				errs = append(errs, k.Approve(ctx, pd))
			}
		}
	}
	errs = append(errs, s.changed(ctx))
	return errors.Join(errs...)
}

// Run is the leavers scheduler: it ticks at start (catch-up) and then at
// every departure and at least every interval, until ctx ends.
func (s *Service) Run(ctx context.Context, interval time.Duration) error {
	if interval <= 0 {
		interval = time.Minute
	}
	for {
		res, err := s.Tick(ctx)
		if err != nil {
			s.log.Error("leavers scheduler", "err", err)
		}
		if res.Revoked+res.Finished+res.Notified > 0 || res.Purged > 0 {
			s.log.Info("leavers scheduler ran", "revoked", res.Revoked, "finished", res.Finished, "notified", res.Notified, "purged", res.Purged)
		}
		wait := interval
		if !res.Next.IsZero() {
			// Wake just after the departure, by the service's own clock
			// (a test's clock may not read what the system's does); a
			// timer that fires a little early wakes again shortly.
			wait = min(wait, max(res.Next.Sub(s.now())+100*time.Millisecond, 100*time.Millisecond))
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}
