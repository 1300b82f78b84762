package people

import (
	"context"
	"fmt"
	"net"
	"sync"

	"github.com/gatehouse-net/gatehouse/policy"
)

// fakeKernel records the enforcer calls people makes; fail makes the next
// call fail (a netlink error), to test that a revocation stays pending.
type fakeKernel struct {
	mu      sync.Mutex
	calls   []string
	revoked map[string]bool
	fail    error
}

func newFakeKernel() *fakeKernel { return &fakeKernel{revoked: map[string]bool{}} }

func (k *fakeKernel) rec(op string, ds ...policy.Device) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.fail != nil {
		err := k.fail
		return err
	}
	for _, d := range ds {
		k.calls = append(k.calls, fmt.Sprintf("%s %s", op, d.MAC))
		switch op {
		case "revoke":
			k.revoked[d.MAC.String()] = true
		case "reinstate":
			delete(k.revoked, d.MAC.String())
		}
	}
	return nil
}

func (k *fakeKernel) isRevoked(mac net.HardwareAddr) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.revoked[mac.String()]
}

func (k *fakeKernel) Approve(_ context.Context, d policy.Device) error { return k.rec("approve", d) }
func (k *fakeKernel) Unapprove(_ context.Context, d policy.Device) error {
	return k.rec("unapprove", d)
}
func (k *fakeKernel) Quarantine(_ context.Context, d policy.Device) error {
	return k.rec("quarantine", d)
}
func (k *fakeKernel) Release(_ context.Context, d policy.Device) error { return k.rec("release", d) }
func (k *fakeKernel) Revoke(_ context.Context, ds ...policy.Device) error {
	return k.rec("revoke", ds...)
}
func (k *fakeKernel) Reinstate(_ context.Context, ds ...policy.Device) error {
	return k.rec("reinstate", ds...)
}

// fakeRADIUS records Disconnect requests; fail is what each returns (an
// access point that did not acknowledge).
type fakeRADIUS struct {
	mu   sync.Mutex
	macs []string
	fail error
}

func (f *fakeRADIUS) Disconnect(_ context.Context, mac net.HardwareAddr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.macs = append(f.macs, mac.String())
	return f.fail
}

func (f *fakeRADIUS) disconnected() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.macs...)
}

// fakeLeases records lease releases.
type fakeLeases struct {
	mu   sync.Mutex
	macs []string
}

func (f *fakeLeases) ReleaseMAC(_ context.Context, mac net.HardwareAddr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.macs = append(f.macs, mac.String())
	return nil
}

func (f *fakeLeases) released() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.macs...)
}
