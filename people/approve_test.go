package people

import (
	"context"
	"errors"
	"net"
	"slices"
	"testing"

	"github.com/gatehouse-net/gatehouse/store"
)

// TestApproveDeviceResolvesTheOwner: the owner text is a person's MIS id or
// username and links the device to them; an id naming nobody approves
// nothing; the approval reaches the kernel and sets the RADIUS segment.
func TestApproveDeviceResolvesTheOwner(t *testing.T) {
	ctx := context.Background()
	k := newFakeKernel()
	s, c := newService(t, sampleNow, Options{Kernel: k})
	p, err := s.st.CreatePerson(ctx, "test", store.Person{Kind: "staff", StaffCode: "ABC", Username: "abrown",
		LegalForename: "Ann", LegalSurname: "Brown", State: store.PersonActive}, c.Now())
	if err != nil {
		t.Fatal(err)
	}
	mac := net.HardwareAddr{0x3c, 0x22, 0xfb, 1, 2, 3}

	if _, err := s.ApproveDevice(ctx, "cli", mac, "staff", "laptop", "nobody-here"); !errors.Is(err, ErrUnknownPerson) {
		t.Fatalf("unknown owner: err = %v, want ErrUnknownPerson", err)
	}
	if known, _, _, _ := s.st.DeviceStatus(ctx, mac); known {
		t.Fatal("an approval naming an unknown person recorded the device")
	}

	for _, owner := range []string{"abrown", "abc"} { // username, staff code (any case)
		if _, err := s.ApproveDevice(ctx, "cli", mac, "staff", "laptop", owner); err != nil {
			t.Fatalf("owner %q: %v", owner, err)
		}
		pid, err := s.st.DeviceOwner(ctx, mac)
		if err != nil || pid != p.ID {
			t.Fatalf("owner %q: device owner = %d, %v; want %d", owner, pid, err, p.ID)
		}
	}
	d, err := s.st.DeviceByMAC(ctx, mac)
	if err != nil || !d.Approved || d.Blocked || d.Name != "laptop" {
		t.Fatalf("device after approval: %+v %v", d, err)
	}
	rd, err := s.st.RADIUSDeviceByMAC(ctx, mac)
	if err != nil || rd.Segment != "staff" {
		t.Fatalf("RADIUS segment = %q, %v; want staff", rd.Segment, err)
	}
	k.mu.Lock()
	calls := slices.Clone(k.calls)
	k.mu.Unlock()
	if !slices.Contains(calls, "approve "+mac.String()) {
		t.Fatalf("kernel calls %v: approval not applied", calls)
	}
	n := 0
	for _, c := range calls {
		if c == "approve "+mac.String() {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("kernel calls %v: a repeated approval was applied twice", calls)
	}

	// A revoked owner's device cannot be approved, named or not.
	if _, err := s.st.RevokePerson(ctx, "test", p.ID, "left", c.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ApproveDevice(ctx, "cli", mac, "staff", "", ""); !errors.Is(err, ErrOwnerRevoked) {
		t.Fatalf("revoked owner kept: err = %v, want ErrOwnerRevoked", err)
	}
	if _, err := s.ApproveDevice(ctx, "cli", mac, "staff", "", "ABC"); !errors.Is(err, ErrOwnerRevoked) {
		t.Fatalf("revoked owner named: err = %v, want ErrOwnerRevoked", err)
	}
}
