package store

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// TestRetentionPurgesDeleteOnlyOldRowsInAuditedChunks runs every
// retention purge over a backlog of more than one chunk.
func TestRetentionPurgesDeleteOnlyOldRowsInAuditedChunks(t *testing.T) {
	cut := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	old := purgeChunk + 3 // more than one chunk
	cases := []struct {
		name   string
		action string
		// fill stores old rows before cut, one at cut named "kept-at-cut"
		// and one after it named "new".
		fill  func(*Store) error
		purge func(*Store) (int64, error)
		left  func(*Store) ([]string, error) // names, newest first
	}{
		{
			name: "dns query log", action: "dnslog.purge",
			fill: func(s *Store) error {
				var b []DNSQuery
				for i := range old {
					b = append(b, dnsQuery(cut.Add(-time.Duration(i+1)*time.Second), "10.20.0.10", fmt.Sprintf("old%d.example", i)))
				}
				b = append(b, dnsQuery(cut, "10.20.0.10", "kept-at-cut"), dnsQuery(cut.Add(time.Hour), "10.20.0.10", "new"))
				return s.InsertDNSQueries(context.Background(), b)
			},
			purge: func(s *Store) (int64, error) { return s.PurgeDNSQueries(context.Background(), "scheduler", cut) },
			left: func(s *Store) ([]string, error) {
				qs, err := s.DNSQueries(context.Background(), DNSQueryFilter{})
				var names []string
				for _, q := range qs {
					names = append(names, q.Name)
				}
				return names, err
			},
		},
		{
			name: "findings", action: "findings.purge",
			fill: func(s *Store) error {
				var b []Finding
				for i := range old {
					b = append(b, finding(cut.Add(-time.Duration(i+1)*time.Second), "pupil", "vpn", pupilMAC))
				}
				b = append(b, finding(cut, "pupil", "kept-at-cut", pupilMAC), finding(cut.Add(time.Hour), "pupil", "new", pupilMAC))
				return s.InsertFindings(context.Background(), b)
			},
			purge: func(s *Store) (int64, error) { return s.PurgeFindings(context.Background(), "scheduler", cut) },
			left: func(s *Store) ([]string, error) {
				fs, err := s.Findings(context.Background(), FindingFilter{})
				var names []string
				for _, f := range fs {
					names = append(names, f.Class)
				}
				return names, err
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := openTemp(t)
			ctx := context.Background()
			if err := tc.fill(s); err != nil {
				t.Fatal(err)
			}
			n, err := tc.purge(s)
			if err != nil || n != int64(old) {
				t.Fatalf("purged %d, %v; want %d", n, err, old)
			}
			left, err := tc.left(s)
			if err != nil || fmt.Sprint(left) != "[new kept-at-cut]" {
				t.Fatalf("left after purge: %v %v", left, err)
			}
			entries, err := s.AuditList(ctx, 10, 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != 2 {
				t.Fatalf("%d audit entries, want one per chunk (2)", len(entries))
			}
			for _, e := range entries {
				if e.Action != tc.action || e.Actor != "scheduler" {
					t.Errorf("audit entry %+v", e)
				}
			}
			if n, err := tc.purge(s); err != nil || n != 0 {
				t.Fatalf("second purge = %d, %v; want 0", n, err)
			}
			if after, _ := s.AuditList(ctx, 10, 0); len(after) != 2 {
				t.Fatalf("a purge that deleted nothing was audited")
			}
		})
	}
}
