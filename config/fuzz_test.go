package config

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/gatehouse-net/gatehouse/internal/shared"
)

// FuzzParse checks that no input crashes Parse, that a rejection is always an
// *Error whose problems are located in the file, that an accepted file
// satisfies the invariants consumers rely on, and that parsing is
// deterministic (map iteration must not leak into results or messages).
func FuzzParse(f *testing.F) {
	for _, p := range []string{"testdata/example.yaml", shared.Path(f, "gatehouse.example.yaml")} {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(minimal))
	f.Add([]byte(minimal + second))
	f.Add([]byte(minimal + "servers: {mis: 10.5.0.0/24, staff: 10.10.0.0/16}\n"))
	f.Add([]byte("a: &a [*a]\n"))
	f.Add([]byte("segments:\n  - &s {<<: *s}\n"))
	f.Add([]byte("x: &x {<<: [*x, *x]}\nsegments: [*x]\n"))
	f.Add([]byte("---\n---\n"))
	f.Add([]byte("site: {name: \"\\u0000\"}\n"))

	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("f.yaml", data)
		_, err2 := Parse("f.yaml", data)
		if (err == nil) != (err2 == nil) || (err != nil && err.Error() != err2.Error()) {
			t.Fatalf("Parse is not deterministic:\n%v\n---\n%v", err, err2)
		}
		if err != nil {
			var pe *Error
			if !errors.As(err, &pe) || len(pe.Problems) == 0 {
				t.Fatalf("error %v (%T) is not an *Error with problems", err, err)
			}
			for _, p := range pe.Problems {
				if p.File != "f.yaml" || p.Line < 0 || p.Msg == "" {
					t.Fatalf("badly located problem %+v", p)
				}
			}
			return
		}
		checkInvariants(t, c)
	})
}

func checkInvariants(t *testing.T, c *Config) {
	t.Helper()
	if c.Site.Name == "" || c.Site.Location == nil || c.Database == "" || len(c.Segments) == 0 || c.Servers == nil {
		t.Fatalf("accepted config lacks required values: %+v", c)
	}
	if c.Admin.TLS != "auto" && c.Admin.TLS != "files" || c.Admin.CertFile == "" || c.Admin.KeyFile == "" {
		t.Fatalf("accepted admin section %+v", c.Admin)
	}
	names := map[string]bool{}
	for _, s := range c.Segments {
		if names[s.Name] || s.Name == "" || s.Interface == "" {
			t.Fatalf("segment %+v: empty or repeated name/interface", s)
		}
		names[s.Name] = true
		if !s.Subnet.Addr().Is4() || s.Subnet.Masked() != s.Subnet || !s.Subnet.Contains(s.Gateway) ||
			s.Gateway == s.Subnet.Addr() || s.Gateway == broadcast(s.Subnet) {
			t.Fatalf("segment %+v: subnet/gateway invariant broken", s)
		}
		if s.VLAN < 0 || s.VLAN > 4094 {
			t.Fatalf("segment %+v: VLAN out of range", s)
		}
		if d := s.DHCP; d.Enabled() {
			if !s.Subnet.Contains(d.RangeStart) || !s.Subnet.Contains(d.RangeEnd) || d.RangeStart.Compare(d.RangeEnd) > 0 ||
				(d.RangeStart.Compare(s.Gateway) <= 0 && s.Gateway.Compare(d.RangeEnd) <= 0) || d.Lease < MinLease {
				t.Fatalf("segment %+v: DHCP invariant broken", s)
			}
		}
	}
	for name, p := range c.Servers {
		for _, s := range c.Segments {
			if p.Overlaps(s.Subnet) {
				t.Fatalf("server %s %s overlaps segment %s", name, p, s.Name)
			}
		}
	}
	for _, u := range c.DNS.Upstream {
		if !u.IsValid() || u.Port() == 0 {
			t.Fatalf("upstream %v", u)
		}
	}
	for _, rc := range c.RADIUS.Clients {
		if rc.Name == "" || !rc.Address.IsValid() || rc.SecretFile == "" || rc.CoAPort < 1 || rc.CoAPort > 65535 {
			t.Fatalf("radius client %+v", rc)
		}
	}
	for _, i := range c.Inspect.Interfaces {
		if strings.TrimSpace(i) == "" {
			t.Fatalf("empty inspect interface")
		}
	}
}
