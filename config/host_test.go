package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestHostProblemsNameWhatTheMachineLacks(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("good.secret", "s3cret\n")
	write("empty.secret", " \n")
	write("plainfile", "x")
	if err := os.Mkdir(filepath.Join(dir, "adir"), 0o700); err != nil {
		t.Fatal(err)
	}

	// Interfaces: lo exists in every network namespace; the ghx- names are
	// valid but exist nowhere.
	base := func(database, admin string) string {
		return `site: {name: S}
database: ` + database + `
uplink: {interface: lo}
segments:
  - name: staff
    interface: ghx-missing0
    subnet: 10.10.0.0/24
    gateway: 10.10.0.1
inspect:
  interfaces: [lo, ghx-missing1]
radius:
  clients:
    - {name: a, address: 10.99.0.1, secret_file: good.secret}
    - {name: b, address: 10.99.0.2, secret_file: absent.secret}
    - {name: c, address: 10.99.0.3, secret_file: empty.secret}
` + admin
	}
	ifaceAndSecretProblems := []string{
		"6: segments[0].interface: interface \"ghx-missing0\" does not exist on this machine",
		"10: inspect.interfaces[1]: interface \"ghx-missing1\" does not exist",
		"14: radius.clients[1].secret_file: cannot read " + filepath.Join(dir, "absent.secret") + ": no such file or directory",
		"15: radius.clients[2].secret_file: " + filepath.Join(dir, "empty.secret") + " is empty",
	}

	for _, tc := range []struct {
		name     string
		database string
		admin    string
		want     []string // in order, each a suffix after "file:"
	}{
		{"database directory can be created", "state/sub/gatehouse.db", "", nil},
		{"database under a plain file", "plainfile/sub/gatehouse.db", "",
			[]string{"2: database: directory " + filepath.Join(dir, "plainfile/sub") + " cannot be created: " + filepath.Join(dir, "plainfile") + " is not a directory"}},
		{"database is a directory", "adir", "",
			[]string{"2: database: " + filepath.Join(dir, "adir") + " is a directory"}},
		{"certificate files missing", "gatehouse.db", "admin: {tls: files, cert_file: c.pem, key_file: good.secret}\n",
			[]string{"16: admin.cert_file: cannot read " + filepath.Join(dir, "c.pem") + ": no such file or directory"}},
		{"auto certificate directory unusable", "gatehouse.db", "admin: {cert_file: plainfile/c.pem, key_file: plainfile/k.pem}\n",
			[]string{"16: admin.cert_file: directory " + filepath.Join(dir, "plainfile") + " cannot be created"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := filepath.Join(dir, "gatehouse.yaml")
			c, err := Parse(name, []byte(base(tc.database, tc.admin)))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, p := range c.HostProblems() {
				got = append(got, p.String())
			}
			want := append(append([]string{}, tc.want...), ifaceAndSecretProblems...)
			// Problems come sorted by line; put the expectations in the same order.
			sortByLeadingLine(want)
			if len(got) != len(want) {
				t.Fatalf("got %d problems, want %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
			}
			for i := range want {
				if !strings.HasPrefix(got[i], name+":"+want[i]) {
					t.Errorf("problem %d = %q\nwant prefix %q", i, got[i], name+":"+want[i])
				}
			}
		})
	}
}

func sortByLeadingLine(ss []string) {
	line := func(s string) int {
		n := 0
		for _, r := range s {
			if r < '0' || r > '9' {
				break
			}
			n = n*10 + int(r-'0')
		}
		return n
	}
	for i := 1; i < len(ss); i++ {
		for j := i; j > 0 && line(ss[j]) < line(ss[j-1]); j-- {
			ss[j], ss[j-1] = ss[j-1], ss[j]
		}
	}
}

func TestHostProblemsNoneForAMachineThatHasEverything(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "aps.secret"), []byte("s3cret"), 0o600); err != nil {
		t.Fatal(err)
	}
	data := `site: {name: S}
database: db/gatehouse.db
uplink: {interface: lo}
segments:
  - {name: staff, interface: lo, subnet: 10.10.0.0/24, gateway: 10.10.0.1}
radius:
  clients: [{name: aps, address: 10.99.0.0/24, secret_file: aps.secret}]
inspect: {interfaces: [lo]}
`
	// lo as both uplink and segment is a parse error; use it for the segment only.
	data = strings.Replace(data, "uplink: {interface: lo}\n", "", 1)
	c, err := Parse(filepath.Join(dir, "g.yaml"), []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	if ps := c.HostProblems(); len(ps) != 0 {
		t.Errorf("HostProblems = %v", ps)
	}
	if _, err := os.Stat(filepath.Join(dir, "db")); !os.IsNotExist(err) {
		t.Errorf("HostProblems created the database directory (stat: %v); it must only look", err)
	}
}
