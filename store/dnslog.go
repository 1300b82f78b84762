package store

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"net/netip"
	"time"
)

// DNSQuery is one lookup in the DNS guard's query log.
type DNSQuery struct {
	At      time.Time
	Client  netip.Addr
	MAC     net.HardwareAddr // nil when unknown
	Segment string
	Name    string
	Type    string // "A", "AAAA", ...
	Answer  string // the guard's short summary of the answer
	Action  string // what the guard did: forwarded, cached, blocked, ...
}

// DefaultDNSLogRetention is how long the query log is kept unless the school
// says otherwise.
const DefaultDNSLogRetention = 30 * 24 * time.Hour

// InsertDNSQueries appends a batch of lookups in one transaction: all of them
// or, on error, none. These rows are the clients' doing, not a person's, so
// they are not audited.
func (s *Store) InsertDNSQueries(ctx context.Context, qs []DNSQuery) error {
	if len(qs) == 0 {
		return nil
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		ins, err := tx.PrepareContext(ctx, `INSERT INTO dns_queries (at, client, mac, segment, name, qtype, answer, action)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`)
		if err != nil {
			return err
		}
		defer ins.Close()
		for _, q := range qs {
			if q.At.IsZero() || !q.Client.IsValid() || q.Name == "" || q.Action == "" {
				return fmt.Errorf("query %q from %v at %v: needs a time, a client, a name and an action", q.Name, q.Client, q.At)
			}
			mac := ""
			if len(q.MAC) > 0 {
				mac = macText(q.MAC)
			}
			if _, err := ins.ExecContext(ctx, formatTime(q.At), q.Client.Unmap().String(), mac, q.Segment, q.Name, q.Type, q.Answer, q.Action); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: insert %d dns queries: %w", len(qs), err)
	}
	return nil
}

// DNSQueryFilter selects query log rows; zero fields select everything.
type DNSQueryFilter struct {
	Client netip.Addr
	Since  time.Time // inclusive
	Limit  int       // at most this many (newest first); 0 means 1000
}

// DNSQueries returns logged lookups, newest first.
func (s *Store) DNSQueries(ctx context.Context, f DNSQueryFilter) ([]DNSQuery, error) {
	if f.Limit <= 0 {
		f.Limit = 1000
	}
	q := `SELECT at, client, mac, segment, name, qtype, answer, action FROM dns_queries WHERE 1 = 1`
	var args []any
	if f.Client.IsValid() {
		q += ` AND client = ?`
		args = append(args, f.Client.Unmap().String())
	}
	if !f.Since.IsZero() {
		q += ` AND at >= ?`
		args = append(args, formatTime(f.Since))
	}
	q += ` ORDER BY at DESC, id DESC LIMIT ?`
	args = append(args, f.Limit)
	return queryAll(ctx, s.db, "dns queries", scanDNSQuery, q, args...)
}

// scanDNSQuery reads one row of DNSQueries's columns.
func scanDNSQuery(r scanner) (DNSQuery, error) {
	var d DNSQuery
	var at, client, mac string
	err := r.Scan(&at, &client, &mac, &d.Segment, &d.Name, &d.Type, &d.Answer, &d.Action)
	if err != nil {
		return d, err
	}
	if d.At, err = parseTime(at); err != nil {
		return d, err
	}
	if d.Client, err = parseAddrText(client); err != nil {
		return d, err
	}
	if d.MAC, err = parseMACText(mac); err != nil {
		return d, err
	}
	return d, nil
}

// PurgeDNSQueries deletes lookups older than before and returns how many
// went, audited as "dnslog.purge" (see purgeOlder).
func (s *Store) PurgeDNSQueries(ctx context.Context, actor string, before time.Time) (int64, error) {
	return s.purgeOlder(ctx, actor, "dns_queries", "dnslog.purge", before)
}
