// Command radlat measures RADIUS response latency for bench/radius.sh:
// it keeps -parallel Access-Requests in flight against one server (each
// signed with a Message-Authenticator, as both servers in the benchmark
// require), the same MAB or PAP requests radclient sends there, and prints
// how many were answered and the p50, p99 and maximum time from sending a
// request to reading its answer. radclient prints no latencies, hence this.
//
// It owns nothing but its own sockets; every wait is bounded by -timeout.
package main

import (
	"crypto/hmac"
	"crypto/md5"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"sort"
	"sync"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:1812", "server address")
	secret := flag.String("secret", "", "shared secret (required)")
	kind := flag.String("kind", "mab", "mab (device 02:00:00:00:xx:xx, as radius.sh) or pap (userN/benchpassN)")
	n := flag.Int("n", 5000, "requests")
	par := flag.Int("parallel", 64, "requests in flight")
	devices := flag.Int("devices", 1000, "devices (mab) or users (pap) to cycle through")
	timeout := flag.Duration("timeout", 5*time.Second, "wait for one answer")
	flag.Parse()
	if *secret == "" || *n < 1 || *n > 1000000 || *par < 1 || *par > 1024 || *devices < 1 {
		flag.Usage()
		os.Exit(2)
	}
	lat, lost, err := run(*addr, []byte(*secret), *kind, *n, *par, *devices, *timeout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "radlat:", err)
		os.Exit(1)
	}
	if len(lat) == 0 {
		fmt.Printf("answered 0 lost %d\n", lost)
		return
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
	fmt.Printf("answered %d lost %d p50_ms %.2f p99_ms %.2f max_ms %.2f\n", len(lat), lost, q(0.5), q(0.99), q(1))
}

func request(secret []byte, kind string, i, devices int) ([]byte, error) {
	p := radius.New(radius.CodeAccessRequest, secret)
	k := i % devices
	var user, pw string
	if kind == "pap" {
		user, pw = fmt.Sprintf("user%d", k), fmt.Sprintf("benchpass%d", k)
	} else {
		user = fmt.Sprintf("02000000%02x%02x", (k>>8)&255, k&255)
		pw = user
		_ = rfc2865.CallingStationID_SetString(p, user)
	}
	_ = rfc2865.UserName_SetString(p, user)
	if err := rfc2865.UserPassword_SetString(p, pw); err != nil {
		return nil, err
	}
	_ = rfc2865.CalledStationID_SetString(p, "0A-00-00-00-00-01:Pupils")
	p.Add(80, make(radius.Attribute, 16))
	b, err := p.Encode()
	if err != nil {
		return nil, err
	}
	// The Message-Authenticator is the last attribute: HMAC-MD5 over the
	// packet with its value zero (RFC 3579 3.2).
	m := hmac.New(md5.New, secret)
	m.Write(b)
	copy(b[len(b)-16:], m.Sum(nil))
	return b, nil
}

func run(addr string, secret []byte, kind string, n, par, devices int, timeout time.Duration) ([]time.Duration, int, error) {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, 0, err
	}
	var (
		mu   sync.Mutex
		lat  = make([]time.Duration, 0, n)
		lost int
		wg   sync.WaitGroup
		next = make(chan int)
		errs = make(chan error, par)
	)
	for range par {
		c, err := net.DialUDP("udp", nil, ua)
		if err != nil {
			return nil, 0, err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			buf := make([]byte, 4096)
			for i := range next {
				b, err := request(secret, kind, i, devices)
				if err != nil {
					errs <- err
					return
				}
				t0 := time.Now()
				if _, err := c.Write(b); err != nil {
					errs <- err
					return
				}
				ok := false
				for {
					_ = c.SetReadDeadline(t0.Add(timeout))
					m, err := c.Read(buf)
					if err != nil {
						var ne net.Error
						if errors.As(err, &ne) && ne.Timeout() {
							break
						}
						errs <- err
						return
					}
					// Only the answer to this request (same identifier).
					if m >= 20 && buf[1] == b[1] {
						ok = true
						break
					}
				}
				d := time.Since(t0)
				mu.Lock()
				if ok {
					lat = append(lat, d)
				} else {
					lost++
				}
				mu.Unlock()
			}
		}()
	}
	for i := range n {
		select {
		case next <- i:
		case err := <-errs:
			close(next)
			wg.Wait()
			return nil, 0, err
		}
	}
	close(next)
	wg.Wait()
	select {
	case err := <-errs:
		return nil, 0, err
	default:
	}
	return lat, lost, nil
}
