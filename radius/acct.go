package radius

import (
	"context"
	"net"
	"net/netip"
	"strconv"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2866"
	"layeh.com/radius/rfc2869"

	"github.com/gatehouse-net/gatehouse/events"
	"github.com/gatehouse-net/gatehouse/store"
)

// accounting records one Accounting-Request. The answer goes only after the
// record is durable: a NAS that hears nothing retransmits, so a failed write
// is dropped rather than acknowledged.
func (s *Server) accounting(ctx context.Context, c *Client, src netip.AddrPort, p *radius.Packet) outcome {
	status, err := rfc2866.AcctStatusType_Lookup(p)
	if err != nil {
		return outcome{reason: dropBadAttribute}
	}
	at := s.now().Add(-time.Duration(rfc2866.AcctDelayTime_Get(p)) * time.Second)
	resp := p.Response(radius.CodeAccountingResponse)
	switch status {
	case rfc2866.AcctStatusType_Value_AccountingOn, rfc2866.AcctStatusType_Value_AccountingOff:
		cause := "NAS-Reboot"
		if status == rfc2866.AcctStatusType_Value_AccountingOff {
			cause = "NAS-Off"
		}
		n, err := s.o.Sessions.CloseNASSessions(ctx, c.Name, at, cause)
		if err != nil {
			s.log.Error("radius: closing a NAS's sessions", "client", c.Name, "err", err)
			return outcome{reason: dropStoreError}
		}
		s.log.Info("radius: "+status.String()+": the NAS's open sessions are closed", "client", c.Name, "sessions", n)
		return outcome{reply: resp}
	case rfc2866.AcctStatusType_Value_Start, rfc2866.AcctStatusType_Value_InterimUpdate, rfc2866.AcctStatusType_Value_Stop:
	default:
		// Tunnel and failure records: acknowledged, nothing to keep.
		return outcome{reply: resp}
	}
	u := store.AccountingUpdate{
		NAS: c.Name, NASAddr: src.Addr(), At: at,
		AcctSessionID: rfc2866.AcctSessionID_GetString(p),
		Username:      rfc2865.UserName_GetString(p),
		SessionTime:   time.Duration(rfc2866.AcctSessionTime_Get(p)) * time.Second,
		InOctets:      uint64(rfc2869.AcctInputGigawords_Get(p))<<32 | uint64(rfc2866.AcctInputOctets_Get(p)),
		OutOctets:     uint64(rfc2869.AcctOutputGigawords_Get(p))<<32 | uint64(rfc2866.AcctOutputOctets_Get(p)),
	}
	if u.AcctSessionID == "" {
		return outcome{reason: dropBadAttribute}
	}
	switch status {
	case rfc2866.AcctStatusType_Value_Start:
		u.Status = store.AcctStart
	case rfc2866.AcctStatusType_Value_InterimUpdate:
		u.Status = store.AcctInterim
	default:
		u.Status = store.AcctStop
		if v, err := rfc2866.AcctTerminateCause_Lookup(p); err == nil {
			u.StopCause = v.String()
		}
	}
	if mac, ok := ParseMAC(rfc2865.CallingStationID_GetString(p)); ok {
		u.MAC = mac
	} else if mac, ok := ParseMAC(u.Username); ok {
		u.MAC = mac
	}
	if ip, err := rfc2865.FramedIPAddress_Lookup(p); err == nil {
		if a, ok := netip.AddrFromSlice(ip); ok {
			u.IP = a.Unmap()
		}
	}
	var ap net.HardwareAddr
	ap, u.SSID = splitCalledStation(rfc2865.CalledStationID_GetString(p))
	if ap != nil {
		u.AP = ap.String()
	}
	if id := rfc2869.NASPortID_GetString(p); id != "" {
		u.NASPort = id
	} else if n, err := rfc2865.NASPort_Lookup(p); err == nil {
		u.NASPort = strconv.FormatUint(uint64(n), 10)
	}
	u.Person = s.personOf(ctx, u.Username, u.MAC)
	sess, err := s.o.Sessions.RecordAccounting(ctx, u)
	if err != nil {
		s.log.Error("radius: recording accounting", "client", c.Name, "session", u.AcctSessionID, "err", err)
		return outcome{reason: dropStoreError}
	}
	switch u.Status {
	case store.AcctStart:
		events.Publish(s.o.Events, events.SessionStarted{Source: events.SourceRADIUS, At: at, MAC: sess.MAC, IP: sess.IP,
			Username: sess.Username, Person: sess.Person, AccessPoint: sess.AP, SSID: sess.SSID, SessionID: sess.AcctSessionID})
	case store.AcctStop:
		events.Publish(s.o.Events, events.SessionEnded{Source: events.SourceRADIUS, At: at, MAC: sess.MAC, IP: sess.IP,
			Username: sess.Username, Reason: sess.StopCause, SessionID: sess.AcctSessionID})
	}
	return outcome{reply: resp}
}

// personOf names the person behind a session: the login's owner for a
// person's login, the device's owner for MAB. Unknown is "".
func (s *Server) personOf(ctx context.Context, user string, mac net.HardwareAddr) string {
	if um, ok := ParseMAC(user); ok || user == "" {
		if ok {
			mac = um
		}
		if mac == nil {
			return ""
		}
		info, err := s.o.Devices.Lookup(ctx, mac)
		if err != nil {
			return ""
		}
		return info.Owner
	}
	if s.o.Identities == nil {
		return ""
	}
	id, err := s.o.Identities.Lookup(ctx, user)
	if err != nil {
		return ""
	}
	return id.Person
}
