package store

import (
	"context"
	"net"
	"net/netip"
	"reflect"
	"testing"
	"time"
)

func dnsQuery(at time.Time, client, name string) DNSQuery {
	return DNSQuery{At: at, Client: netip.MustParseAddr(client), MAC: net.HardwareAddr{2, 0, 0, 0, 0x20, 0x0a},
		Segment: "pupil", Name: name, Type: "A", Answer: "203.0.113.80", Action: "forwarded"}
}

func TestDNSQueriesRoundTripNewestFirstAndFilter(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	batch := []DNSQuery{
		dnsQuery(t0, "10.20.0.10", "www.example.com"),
		dnsQuery(t0.Add(time.Second), "10.20.0.11", "www.example.org"),
		dnsQuery(t0.Add(2*time.Second), "10.20.0.10", "use-application-dns.net"),
	}
	batch[1].MAC = nil
	batch[2].Action, batch[2].Answer = "canary", "NXDOMAIN"
	if err := s.InsertDNSQueries(ctx, batch); err != nil {
		t.Fatalf("InsertDNSQueries: %v", err)
	}
	all, err := s.DNSQueries(ctx, DNSQueryFilter{})
	if err != nil {
		t.Fatal(err)
	}
	want := []DNSQuery{batch[2], batch[1], batch[0]}
	if !reflect.DeepEqual(all, want) {
		t.Fatalf("DNSQueries:\n got %+v\nwant %+v", all, want)
	}
	cases := []struct {
		name string
		f    DNSQueryFilter
		want []string
	}{
		{"by client", DNSQueryFilter{Client: netip.MustParseAddr("10.20.0.10")}, []string{"use-application-dns.net", "www.example.com"}},
		{"since", DNSQueryFilter{Since: t0.Add(time.Second)}, []string{"use-application-dns.net", "www.example.org"}},
		{"limit", DNSQueryFilter{Limit: 1}, []string{"use-application-dns.net"}},
	}
	for _, c := range cases {
		got, err := s.DNSQueries(ctx, c.f)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		var names []string
		for _, q := range got {
			names = append(names, q.Name)
		}
		if !reflect.DeepEqual(names, c.want) {
			t.Errorf("%s: %v, want %v", c.name, names, c.want)
		}
	}
}

func TestDNSQueryBatchIsAllOrNothing(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	now := time.Now()
	bad := []DNSQuery{dnsQuery(now, "10.20.0.10", "a.example"), {At: now, Name: "no-client.example", Action: "forwarded"}}
	if err := s.InsertDNSQueries(ctx, bad); err == nil {
		t.Fatal("batch with a bad row inserted")
	}
	got, err := s.DNSQueries(ctx, DNSQueryFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Fatalf("%d rows of a refused batch were kept", len(got))
	}
}
