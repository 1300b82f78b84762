package people

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"net"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// LDAPOptions say where a directory is and which attribute holds what. The
// defaults suit an inetOrgPerson directory laid out as the sample school's
// (see ../shared/mis/README.md); Active Directory needs Attributes set
// (sAMAccountName, employeeID, ...).
type LDAPOptions struct {
	URL      string // ldap://host:389 or ldaps://host:636
	BindDN   string // "" for an anonymous bind
	Password string
	BaseDN   string
	Filter   string // default (objectClass=inetOrgPerson)
	// Attributes maps fields to attribute names; unset fields take the
	// defaults of DefaultLDAPAttributes.
	Attributes map[Field]string
	// KindAttribute holds the kind of person (default employeeType);
	// PupilValues and StaffValues are its values (default pupil/student
	// and staff/teacher), compared ignoring case.
	KindAttribute            string
	PupilValues, StaffValues []string
	// IDAttribute holds a pupil's UPN or a member of staff's code
	// (default employeeNumber); Attributes[FUPN] or [FStaffCode] override.
	IDAttribute string
	PageSize    uint32        // default 500
	Timeout     time.Duration // default 30s
	// Dial, when set, makes the connection (a test's namespace, a proxy);
	// default a TCP dial of the URL's host.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// StartTLS upgrades an ldap:// connection with the StartTLS extended
	// operation before binding; the bind fails rather than go in clear
	// when the server refuses it. ldaps:// is TLS from the start.
	StartTLS bool
	// TLS is the client configuration for ldaps:// and StartTLS: RootCAs
	// from the directory's CA file; nil verifies against the system roots
	// for the URL's host.
	TLS *tls.Config
}

// DefaultLDAPAttributes is the inetOrgPerson mapping.
func DefaultLDAPAttributes() map[Field]string {
	return map[Field]string{
		FUsername: "uid", FForename: "givenName", FSurname: "sn", FEmail: "mail",
		FYear: "departmentNumber", FReg: "ou", FRole: "title",
	}
}

func (o LDAPOptions) withDefaults() LDAPOptions {
	attrs := DefaultLDAPAttributes()
	for f, a := range o.Attributes {
		attrs[f] = a
	}
	o.Attributes = attrs
	if o.Filter == "" {
		o.Filter = "(objectClass=inetOrgPerson)"
	}
	if o.KindAttribute == "" {
		o.KindAttribute = "employeeType"
	}
	if len(o.PupilValues) == 0 {
		o.PupilValues = []string{"pupil", "student"}
	}
	if len(o.StaffValues) == 0 {
		o.StaffValues = []string{"staff", "teacher"}
	}
	if o.IDAttribute == "" {
		o.IDAttribute = "employeeNumber"
	}
	if o.PageSize == 0 {
		o.PageSize = 500
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	return o
}

// LDAPEntry is one directory entry: its DN and attribute values.
type LDAPEntry struct {
	DN    string
	Attrs map[string][]string
}

// FetchLDAP binds and searches the directory with paging, returning the
// entries under BaseDN that match Filter.
func FetchLDAP(ctx context.Context, o LDAPOptions) ([]LDAPEntry, error) {
	o = o.withDefaults()
	u, err := url.Parse(o.URL)
	if err != nil || (u.Scheme != "ldap" && u.Scheme != "ldaps") || u.Host == "" {
		return nil, fmt.Errorf("people: LDAP URL %q: want ldap://host[:port] or ldaps://", o.URL)
	}
	host := u.Host
	if u.Port() == "" {
		if u.Scheme == "ldaps" {
			host += ":636"
		} else {
			host += ":389"
		}
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	dial := o.Dial
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	raw, err := dial(ctx, "tcp", host)
	if err != nil {
		return nil, fmt.Errorf("people: LDAP connect %s: %w", host, err)
	}
	isTLS := u.Scheme == "ldaps"
	if o.StartTLS && isTLS {
		raw.Close()
		return nil, fmt.Errorf("people: LDAP %s: StartTLS is for ldap:// URLs (ldaps:// is TLS already)", o.URL)
	}
	cfg := &tls.Config{ServerName: u.Hostname(), MinVersion: tls.VersionTLS12}
	if o.TLS != nil {
		cfg = o.TLS.Clone()
		if cfg.ServerName == "" {
			cfg.ServerName = u.Hostname()
		}
	}
	if isTLS {
		tc := tls.Client(raw, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			raw.Close()
			return nil, fmt.Errorf("people: LDAP TLS %s: %w", host, err)
		}
		raw = tc
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = raw.SetDeadline(dl)
	}
	conn := ldap.NewConn(raw, isTLS)
	conn.Start()
	defer conn.Close()
	conn.SetTimeout(o.Timeout)
	// The connection is closed when ctx ends, which unblocks any request.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if o.StartTLS {
		if err := conn.StartTLS(cfg); err != nil {
			return nil, fmt.Errorf("people: LDAP StartTLS %s: %w", host, err)
		}
	}
	if o.BindDN != "" {
		if err := conn.Bind(o.BindDN, o.Password); err != nil {
			return nil, fmt.Errorf("people: LDAP bind as %s: %w", o.BindDN, err)
		}
	}
	attrSet := map[string]bool{o.KindAttribute: true, o.IDAttribute: true}
	for _, a := range o.Attributes {
		attrSet[a] = true
	}
	attrs := make([]string, 0, len(attrSet))
	for a := range attrSet {
		attrs = append(attrs, a)
	}
	sort.Strings(attrs)
	req := ldap.NewSearchRequest(o.BaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, MaxRecords+1, int(o.Timeout/time.Second),
		false, o.Filter, attrs, nil)
	res, err := conn.SearchWithPaging(req, o.PageSize)
	if err != nil {
		return nil, fmt.Errorf("people: LDAP search %s %s: %w", o.BaseDN, o.Filter, err)
	}
	if len(res.Entries) > MaxRecords {
		return nil, fmt.Errorf("people: LDAP search returned more than %d entries", MaxRecords)
	}
	out := make([]LDAPEntry, 0, len(res.Entries))
	for _, e := range res.Entries {
		le := LDAPEntry{DN: e.DN, Attrs: map[string][]string{}}
		for _, a := range e.Attributes {
			le.Attrs[strings.ToLower(a.Name)] = a.Values
		}
		out = append(out, le)
	}
	return out, nil
}

// ParseLDAP turns directory entries into a batch. Entries whose kind
// attribute is neither a pupil nor a staff value are not people Gatehouse
// imports and are skipped; Problems name the entry by its position and DN.
// A directory carries no dates, so leaving dates are left as they are.
func ParseLDAP(name string, entries []LDAPEntry, o LDAPOptions) Batch {
	o = o.withDefaults()
	get := func(e LDAPEntry, attr string) string {
		if v := e.Attrs[strings.ToLower(attr)]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	is := func(v string, set []string) bool {
		for _, s := range set {
			if strings.EqualFold(v, s) {
				return true
			}
		}
		return false
	}
	b := Batch{Source: name, Kinds: []string{"pupil", "staff"}, Fields: map[Kind]map[Field]bool{
		"pupil": {FUPN: true, FForename: true, FSurname: true, FPreferred: true, FYear: true, FReg: true, FUsername: true, FEmail: true},
		"staff": {FStaffCode: true, FForename: true, FSurname: true, FPreferred: true, FRole: true, FUsername: true, FEmail: true},
	}}
	// A directory that holds admission numbers or titles carries them
	// only when the attribute map names where.
	if o.Attributes[FAdmissionNo] != "" {
		b.Fields["pupil"][FAdmissionNo] = true
	}
	if o.Attributes[FTitle] != "" {
		b.Fields["staff"][FTitle] = true
	}
	for i, e := range entries {
		kind := get(e, o.KindAttribute)
		rec := Record{Line: i + 1, Values: map[Field]string{}}
		switch {
		case is(kind, o.PupilValues):
			rec.Kind = "pupil"
		case is(kind, o.StaffValues):
			rec.Kind = "staff"
		default:
			continue
		}
		for f := range b.Fields[rec.Kind] {
			if a, ok := o.Attributes[f]; ok {
				rec.Values[f] = get(e, a)
			}
		}
		idAttr := o.IDAttribute
		if rec.Kind == "pupil" {
			if a := o.Attributes[FUPN]; a != "" {
				idAttr = a
			}
			rec.Values[FUPN] = get(e, idAttr)
		} else {
			if a := o.Attributes[FStaffCode]; a != "" {
				idAttr = a
			}
			rec.Values[FStaffCode] = get(e, idAttr)
		}
		if rec.Values[FPreferred] == "" {
			// Most directories hold one forename: the one people use.
			rec.Values[FPreferred] = rec.Values[FForename]
		}
		b.Records = append(b.Records, rec)
	}
	b.finish("", nil)
	for i := range b.Problems {
		if n := b.Problems[i].Line; n >= 1 && n <= len(entries) {
			b.Problems[i].File = "entry " + entries[n-1].DN
		}
	}
	return b
}

// ReadLDIF reads the entries of an LDIF file (RFC 2849 content records:
// "attr: value", "attr:: base64", folded lines), for importing a
// directory's export without a live server.
func ReadLDIF(data []byte) ([]LDAPEntry, error) {
	if len(data) > MaxFileBytes {
		return nil, fmt.Errorf("people: LDIF is larger than %d MiB", MaxFileBytes>>20)
	}
	var out []LDAPEntry
	var cur *LDAPEntry
	var lines []string
	for _, l := range strings.Split(strings.ReplaceAll(string(data), "\r\n", "\n"), "\n") {
		if strings.HasPrefix(l, " ") && len(lines) > 0 {
			lines[len(lines)-1] += l[1:]
			continue
		}
		lines = append(lines, l)
	}
	for i, l := range lines {
		if strings.HasPrefix(l, "#") {
			continue
		}
		if strings.TrimSpace(l) == "" {
			cur = nil
			continue
		}
		name, val, ok := strings.Cut(l, ":")
		if !ok || name == "" {
			return nil, fmt.Errorf("people: LDIF record %d: %q is not attr: value", i+1, l)
		}
		if strings.HasPrefix(val, ":") {
			dec, err := base64.StdEncoding.DecodeString(strings.TrimSpace(val[1:]))
			if err != nil {
				return nil, fmt.Errorf("people: LDIF record %d: %s: %w", i+1, name, err)
			}
			val = string(dec)
		} else if strings.HasPrefix(val, "<") {
			return nil, fmt.Errorf("people: LDIF record %d: %s: URL values are not read", i+1, name)
		} else {
			val = strings.TrimPrefix(val, " ")
		}
		if strings.EqualFold(name, "version") && cur == nil && len(out) == 0 {
			continue
		}
		if strings.EqualFold(name, "dn") {
			if len(out) >= MaxRecords*2 {
				return nil, fmt.Errorf("people: LDIF has more than %d entries", MaxRecords*2)
			}
			out = append(out, LDAPEntry{DN: val, Attrs: map[string][]string{}})
			cur = &out[len(out)-1]
			continue
		}
		if cur == nil {
			return nil, fmt.Errorf("people: LDIF record %d: %s before any dn", i+1, name)
		}
		k := strings.ToLower(name)
		cur.Attrs[k] = append(cur.Attrs[k], val)
	}
	return out, nil
}
