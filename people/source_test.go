package people

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/gatehouse-net/gatehouse/password"
	"github.com/gatehouse-net/gatehouse/radius"
)

// Reading the exports from disk gives the same people as parsing them, and
// pupils and staff read together are one batch (nobody is a leaver for
// being in the other file).
func TestReadFilesMergesTheExports(t *testing.T) {
	d := misDir(t)
	b, err := ReadFiles("cli", []string{filepath.Join(d, "pupils-sims.csv"), filepath.Join(d, "staff.csv")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if b.Source != "cli" {
		t.Fatalf("source %q", b.Source)
	}
	got := project(peopleFrom(t, b))
	want := project(peopleFrom(t, parseFile(t, "pupils-sims.csv"), parseFile(t, "staff.csv")))
	if len(got) != 360 || !reflect.DeepEqual(got, want) {
		t.Fatalf("read %d people, parsed %d", len(got), len(want))
	}
}

// A directory among the files is a OneRoster bundle, as is Source.OneRoster.
func TestOneRosterDirectoryReadsAsABundle(t *testing.T) {
	dir := filepath.Join(misDir(t), "oneroster")
	want := project(peopleFrom(t, oneRosterBatch(t)))
	fromFiles, err := ReadFiles("cli", []string{dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := project(peopleFrom(t, fromFiles)); !reflect.DeepEqual(got, want) {
		t.Fatalf("a bundle among the files: %d people, want %d", len(got), len(want))
	}
	fromSource, err := Source{Name: "nightly", OneRoster: dir, Files: []string{"/nonexistent.csv"}}.Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if fromSource.Source != "nightly" {
		t.Fatalf("source %q", fromSource.Source)
	}
	if got := project(peopleFrom(t, fromSource)); !reflect.DeepEqual(got, want) {
		t.Fatalf("Source.OneRoster: %d people, want %d", len(got), len(want))
	}
}

func TestReadFilesRefusesWhatItCannotRead(t *testing.T) {
	if _, err := ReadFiles("cli", nil, nil); err == nil {
		t.Fatal("no files: no error")
	}
	missing := filepath.Join(t.TempDir(), "gone.csv")
	if _, err := (Source{Name: "x", Files: []string{missing}}).Read(context.Background()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}

func TestReadBoundedRefusesALargerFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "big.csv")
	if err := os.WriteFile(p, make([]byte, 2<<20+1), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := ReadBounded(f, 2<<20); err == nil || !strings.Contains(err.Error(), "larger than 2 MiB") {
		t.Fatalf("over the limit: %v", err)
	}
	data, err := ReadBounded(f, 4<<20)
	if err != nil || len(data) != 2<<20+1 {
		t.Fatalf("under the limit: %d bytes, %v", len(data), err)
	}
	empty := filepath.Join(t.TempDir(), "empty.csv")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	ef, err := os.Open(empty)
	if err != nil {
		t.Fatal(err)
	}
	defer ef.Close()
	if data, err := ReadBounded(ef, 1); err != nil || len(data) != 0 {
		t.Fatalf("empty file: %q %v", data, err)
	}
}

// RADIUS's view of a login: the person's id, hash and state, and an
// unknown name as radius.ErrNoIdentity (not a store error).
func TestRADIUSIdentitiesAnswersPAPLookups(t *testing.T) {
	ctx := context.Background()
	s, _ := school(t, Options{})
	p := state(t, s, "1002jacc")
	if err := s.SetWiFiPassword(ctx, "web:nm", p.ID, "correct horse battery"); err != nil {
		t.Fatal(err)
	}
	var ids radius.Identities = RADIUSIdentities{Service: s}
	id, err := ids.Lookup(ctx, "1002jacc")
	if err != nil || !id.Active || id.Person != PersonRef(p.ID) {
		t.Fatalf("identity %+v %v", id, err)
	}
	if ok, _ := password.Verify(id.PasswordHash, "correct horse battery"); !ok {
		t.Fatal("the hash does not verify")
	}
	if _, err := ids.Lookup(ctx, "nobody"); !errors.Is(err, radius.ErrNoIdentity) {
		t.Fatalf("unknown login: %v", err)
	}
	if _, err := s.RevokeNow(ctx, "web:nm", p.ID, "test"); err != nil {
		t.Fatal(err)
	}
	if id, err := ids.Lookup(ctx, "1002jacc"); err != nil || id.Active {
		t.Fatalf("after revocation %+v %v", id, err)
	}
}
