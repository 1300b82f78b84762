//go:build gatehouse_faults

package main

import (
	"context"
	"net"
	"net/netip"
	"time"

	"github.com/gatehouse-net/gatehouse/captive"
	"github.com/gatehouse-net/gatehouse/dhcp"
	"github.com/gatehouse-net/gatehouse/policy"
	"github.com/gatehouse-net/gatehouse/policy/dnsguard"
)

// A test build (go build -tags gatehouse_faults) panics inside the packet
// and request handlers on marker input, standing in for a bug a fuzzer
// might find there one day: the marker MAC's DHCP lease, the marker name's
// DNS lookup, and any portal request from the marker address.
var (
	faultMAC  = net.HardwareAddr{0x02, 0xde, 0xad, 0, 0, 0x01}
	faultName = "panic.fault.test"
	faultIP   = netip.MustParseAddr("10.40.0.250")
)

type panicBinder struct{ dhcp.Binder }

func (b panicBinder) Bind(ctx context.Context, d policy.Device, until time.Time) error {
	if d.MAC.String() == faultMAC.String() {
		panic("injected fault: DHCP lease for " + d.MAC.String())
	}
	return b.Binder.Bind(ctx, d, until)
}

// BindMany panics when the batch holds the fault MAC's lease, as Bind does
// for it alone: the DHCP finisher then binds the batch's leases one by one.
func (b panicBinder) BindMany(ctx context.Context, bs []policy.Binding) []error {
	for _, p := range bs {
		if p.Device.MAC.String() == faultMAC.String() {
			panic("injected fault: DHCP lease batch holding " + p.Device.MAC.String())
		}
	}
	return b.Binder.BindMany(ctx, bs)
}

type panicRecorder struct{ dnsguard.Recorder }

func (r panicRecorder) Record(q dnsguard.Query) {
	if q.Name == faultName {
		panic("injected fault: DNS lookup of " + q.Name)
	}
	r.Recorder.Record(q)
}

type panicNeighbours struct{ captive.Neighbours }

func (n panicNeighbours) MACFor(ip netip.Addr) (net.HardwareAddr, error) {
	if ip == faultIP {
		panic("injected fault: portal request from " + ip.String())
	}
	return n.Neighbours.MACFor(ip)
}

func faultBinder(b dhcp.Binder) dhcp.Binder                   { return panicBinder{b} }
func faultRecorder(r dnsguard.Recorder) dnsguard.Recorder     { return panicRecorder{r} }
func faultNeighbours(n captive.Neighbours) captive.Neighbours { return panicNeighbours{n} }
