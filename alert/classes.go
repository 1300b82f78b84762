package alert

import (
	"github.com/gatehouse-net/gatehouse/alert/finding"
	"github.com/gatehouse-net/gatehouse/store"
)

// Meaning is what a class means to a safeguarding lead: a title for lists
// and subjects, and a short plain-English paragraph (what it is, why it
// matters, what a school usually does). The technical evidence is shown
// below it, never instead of it.
type Meaning struct {
	Title     string
	Paragraph string
}

// meanings are the built-in texts, one per class.
var meanings = map[string]Meaning{
	finding.ClassVPN: {"VPN use", "A VPN hides what this device does from the school's filter: every site it visits " +
		"goes through an encrypted tunnel to a server outside school, so neither filtering nor monitoring can see it. " +
		"Pupils usually install one to reach blocked sites or apps. Schools usually speak to the pupil, check the device " +
		"and remove the app, and consider whether what was being reached is itself a concern."},
	finding.ClassTor: {"Tor use", "Tor is an anonymity network that hides which sites a device visits and hides the device " +
		"from those sites. It bypasses the school's filter completely and can reach hidden sites not found on the normal web. " +
		"Schools usually treat this as a serious bypass attempt: speak to the user and check the device."},
	finding.ClassProxy: {"Proxy use", "A proxy relays the device's browsing through another server so that the school's filter " +
		"sees only the proxy, not the sites behind it. It is a common way round filtering. Schools usually speak to the user " +
		"and block the proxy."},
	finding.ClassDoH: {"Encrypted DNS (DoH)", "The device looked up site names over encrypted DNS to a public resolver instead " +
		"of the school's DNS, which stops the school's filter and SafeSearch from seeing or steering those look-ups. Some " +
		"browsers do this by default; an app doing it on purpose is a bypass. Schools usually check the browser settings and apps."},
	finding.ClassDoT: {"Encrypted DNS (DoT)", "The device sent its name look-ups over DNS-over-TLS to an outside resolver, " +
		"hiding them from the school's filter. This is usually a setting in the phone or an app. Schools usually ask for the " +
		"setting to be turned off."},
	finding.ClassDoQ: {"Encrypted DNS (DoQ)", "The device sent its name look-ups over DNS-over-QUIC to an outside resolver, " +
		"hiding them from the school's filter. Schools usually ask for the setting or app to be removed."},
	finding.ClassECH: {"Hidden site names (ECH)", "The device connected with Encrypted Client Hello, which hides the name of " +
		"the site being visited from the school's filter. Schools usually check which app or browser setting caused it."},
	finding.ClassSSH: {"Remote shell (SSH)", "The device opened an SSH connection to a server outside school. SSH is used by " +
		"computing students and staff, but it can also carry a tunnel round the filter. Schools usually check whether there " +
		"is a legitimate reason (a course, a project) and otherwise treat it as a bypass attempt."},
	finding.ClassRemoteAccess: {"Remote-access tool", "The device connected with a remote-access tool (remote desktop or " +
		"similar) to a computer outside school. Someone outside could be controlling it, or it could be used to browse from " +
		"a home computer round the filter. Schools usually find out who is at the other end."},
	finding.ClassTunnel: {"Tunnel", "The device's traffic was wrapped inside another protocol to get past the school's " +
		"filter (for example DNS or ICMP tunnelling). This is a deliberate bypass. Schools usually speak to the user and check the device."},
	finding.ClassTethering: {"Sharing its connection", "This device appears to be sharing the school connection with other " +
		"devices (a hotspot), so devices the school does not know about are online through it. Schools usually ask for " +
		"the hotspot to be turned off."},
	finding.ClassUnapprovedDevice: {"Unapproved device", "A device the school has not approved was seen on a network where " +
		"devices need approval. It may be a personal phone or laptop, or someone else's device. Schools usually find out " +
		"whose it is and either approve it or remove it."},
	finding.ClassRogueDHCP: {"Rogue network device", "A device on the school network is handing out network settings as if it " +
		"were the school's router. It can redirect other devices round the filter or disrupt the network. The network " +
		"manager usually finds and unplugs it at once."},
	finding.ClassPoolExhausted: {"Network full", "A network segment has run out of addresses, so new devices cannot join. " +
		"This is usually a network matter (too many devices, or one flooding requests) rather than a safeguarding one."},
	finding.ClassCodeGuessing: {"Visitor code guessing", "Many wrong visitor Wi-Fi codes were typed in a short time, which " +
		"looks like someone trying to guess a code to get online without one. The portal has slowed everyone down. Schools " +
		"usually check who was near the guest network at the time."},
	finding.ClassBlockedLookup: {"Blocked bypass service", "The device asked for the address of a service the school blocks " +
		"because it is used to get round the filter (an encrypted DNS or VPN service). The look-up was refused. Repeated " +
		"attempts suggest an app trying to bypass the filter."},
	finding.ClassRecordsDropped: {"Records lost", "Gatehouse could not keep some of the records it should have (DNS look-ups, " +
		"findings or other writes): a queue was full or the database failed to store them. What a device did in that time may " +
		"be missing from what the DSL sees. This is a matter for the network manager: check the daemon's log and the disk."},
	finding.ClassDiskLow: {"Disk nearly full", "The disk that holds Gatehouse's database is nearly full. When it is full no " +
		"record is kept and no new device gets a network address. This is a matter for the network manager: free space or " +
		"shorten the retention of the DNS log and findings."},
}

// MeaningOf returns the text for class; an unknown class gets a generic one.
func MeaningOf(class string) Meaning {
	if m, ok := meanings[class]; ok {
		return m
	}
	return Meaning{Title: class, Paragraph: "Gatehouse saw something it reports as \"" + class + "\". The technical evidence below says what."}
}

// DefaultSeverity is the severity of each class unless the school sets its
// own: high for deliberate bypasses of the filter (the DSL is emailed at
// once), medium for what needs a look, low for network matters.
var DefaultSeverity = map[string]string{
	finding.ClassVPN:              store.SeverityHigh,
	finding.ClassTor:              store.SeverityHigh,
	finding.ClassProxy:            store.SeverityHigh,
	finding.ClassTunnel:           store.SeverityHigh,
	finding.ClassRemoteAccess:     store.SeverityHigh,
	finding.ClassRogueDHCP:        store.SeverityHigh,
	finding.ClassDoH:              store.SeverityMedium,
	finding.ClassDoT:              store.SeverityMedium,
	finding.ClassDoQ:              store.SeverityMedium,
	finding.ClassECH:              store.SeverityMedium,
	finding.ClassSSH:              store.SeverityMedium,
	finding.ClassTethering:        store.SeverityMedium,
	finding.ClassUnapprovedDevice: store.SeverityMedium,
	finding.ClassCodeGuessing:     store.SeverityMedium,
	finding.ClassBlockedLookup:    store.SeverityLow,
	finding.ClassPoolExhausted:    store.SeverityLow,
	finding.ClassRecordsDropped:   store.SeverityMedium,
	finding.ClassDiskLow:          store.SeverityHigh,
}

// ValidSeverity reports whether s is a severity.
func ValidSeverity(s string) bool {
	return s == store.SeverityHigh || s == store.SeverityMedium || s == store.SeverityLow
}

// Label says what an unapproved-device finding saw, in words: the two
// sources see different things and the DSL must not confuse them.
func Label(f store.Finding) string {
	if f.Class != finding.ClassUnapprovedDevice {
		return MeaningOf(f.Class).Title
	}
	if f.Detail == finding.DetailNeverLeased {
		return "a device that never asked our DHCP server for an address"
	}
	return "a device nobody approved"
}
