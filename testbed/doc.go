// Package testbed builds a simulated school inside Linux network namespaces,
// for end-to-end tests and for `gatehouse demo`.
//
// It owns: the namespaces (a router, an "internet", a management network and
// one client per segment), the veth links and addresses between them, the
// router's IPv4 forwarding switch, and the fake internet's servers: a DNS
// resolver at 203.0.113.53 and a web server at 203.0.113.80 (HTTP and HTTPS).
// It also writes a Gatehouse configuration file that matches the topology.
//
// It does not own anything Gatehouse itself does: no nftables rules, no DHCP
// or RADIUS service, no NAT. The router namespace is an empty router that the
// daemon (or a test) configures.
//
// Topology (addresses are the defaults):
//
//	internet ns  isp0 198.51.100.2/24, lo: 203.0.113.53 (DNS), 203.0.113.80 (web),
//	             192.0.2.0/24 as a local route (any address binds: extra fake servers);
//	             route 10.0.0.0/8 via 198.51.100.1
//	router ns    wan0 198.51.100.1/24, default via 198.51.100.2, ip_forward=1;
//	             gh-mgmt 10.99.0.1/24; one veth per segment (gh-staff 10.10.0.1/22, ...)
//	mgmt ns      eth0 10.99.0.10/24, default via 10.99.0.1 (access points, admin workstation)
//	client ns    eth0 with the segment's .10 address (or none, for DHCP tests),
//	             default via the gateway
//
// IPv6 is disabled in every namespace unless Options.IPv6 is set.
//
// Namespaces are named so that `ip netns exec NAME ...` works: a bind mount at
// /run/netns/NAME. Every name starts with the instance id "gh<pid>x<hex>"
// (for example gh4242x1a2b-router), so instances in one or many processes do
// not clash. Veth pairs are created directly inside their namespaces; nothing
// ever exists in the host namespace. An instance records its owner (pid and
// process start time) in /run/gatehouse-testbed/<id>.json before creating
// anything; Start removes namespaces and markers whose owner is gone, and
// kills processes still running inside them.
//
// Namespaced code runs on an OS thread switched with setns(2): see School.Do,
// and the helpers built on it (Command, DialContext, Listen, ListenPacket,
// HTTPClient, Ping). Goroutines started by such code do not inherit the
// namespace, and a dial by host name may resolve or race on other threads,
// so the helpers accept IP literals only. OpenNS hands out a namespace
// descriptor for APIs that take one (netlink.NewHandleAt,
// nftables.WithNetNSFd). A daemon under test is best run as its own process
// in the router namespace: s.Command(ctx, "router", binary, "run", ...) with
// the file from Config.
//
// A test that wires its own topology instead of a school takes empty
// namespaces one at a time from NewNS (same naming, owner markers and
// cleanup, same rule on root as Require).
//
// Cleanup: Close removes everything. New registers Close with t.Cleanup. A
// caller of Start owns the School and must call Close, including on its
// panic paths (defer s.Close() right after Start); a process killed before
// Close leaves namespaces behind that the next Start removes.
package testbed
