package pki

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"strings"
	"text/template"
	"unicode/utf8"
)

// Onboarding is what a device needs to join the school's WPA-Enterprise
// networks safely: the CA to trust, the server name to check, the SSIDs
// and the anonymous outer identity. None of it is secret.
type Onboarding struct {
	Site       string
	SSIDs      []string
	ServerName string
	Realm      string
	CA         *x509.Certificate
}

// Onboarding returns the onboarding data for the school's SSIDs.
func (a *Authority) Onboarding(site string, ssids []string) Onboarding {
	return Onboarding{Site: site, SSIDs: ssids, ServerName: a.o.ServerName, Realm: a.o.Realm, CA: a.serverCA}
}

// AnonymousIdentity is the outer identity profiles send, so a passer-by
// sniffing the air sees no names.
func (o Onboarding) AnonymousIdentity() string { return "anonymous@" + o.Realm }

// Fingerprint is the CA's SHA-256 fingerprint.
func (o Onboarding) Fingerprint() string { return Fingerprint(o.CA) }

// CAPEM is the CA certificate in PEM.
func (o Onboarding) CAPEM() []byte { return certPEM(o.CA) }

// checkSSID accepts what an SSID may be: 1 to 32 bytes of UTF-8 text.
func checkSSID(s string) error {
	if len(s) == 0 || len(s) > 32 || !utf8.ValidString(s) {
		return fmt.Errorf("SSID %q is not 1 to 32 bytes of text", s)
	}
	return nil
}

// uuidFor is a stable UUID (version 8 layout) for name under this CA, so a
// profile downloaded again replaces the installed one instead of adding a
// second.
func (o Onboarding) uuidFor(name string) string {
	h := sha256.Sum256(append(append([]byte{}, o.CA.Raw...), []byte("\x00"+name)...))
	b := h[:16]
	b[6] = b[6]&0x0f | 0x80
	b[8] = b[8]&0x3f | 0x80
	x := strings.ToUpper(hex.EncodeToString(b))
	return x[0:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:32]
}

// plist is a property list value: string, int, bool, []byte, []any or
// *dict (ordered).
type dict struct {
	keys []string
	vals []any
}

func (d *dict) set(k string, v any) *dict {
	d.keys = append(d.keys, k)
	d.vals = append(d.vals, v)
	return d
}

func writePlist(b *bytes.Buffer, v any, indent string) error {
	esc := func(s string) {
		_ = xml.EscapeText(b, []byte(s))
	}
	switch v := v.(type) {
	case string:
		b.WriteString(indent + "<string>")
		esc(v)
		b.WriteString("</string>\n")
	case int:
		fmt.Fprintf(b, "%s<integer>%d</integer>\n", indent, v)
	case bool:
		if v {
			b.WriteString(indent + "<true/>\n")
		} else {
			b.WriteString(indent + "<false/>\n")
		}
	case []byte:
		b.WriteString(indent + "<data>" + base64.StdEncoding.EncodeToString(v) + "</data>\n")
	case []any:
		b.WriteString(indent + "<array>\n")
		for _, e := range v {
			if err := writePlist(b, e, indent+"\t"); err != nil {
				return err
			}
		}
		b.WriteString(indent + "</array>\n")
	case *dict:
		b.WriteString(indent + "<dict>\n")
		for i, k := range v.keys {
			b.WriteString(indent + "\t<key>")
			esc(k)
			b.WriteString("</key>\n")
			if err := writePlist(b, v.vals[i], indent+"\t"); err != nil {
				return err
			}
		}
		b.WriteString(indent + "</dict>\n")
	default:
		return fmt.Errorf("plist: unsupported value %T", v)
	}
	return nil
}

// EAP method numbers (IANA).
const (
	eapTLS   = 13
	eapTTLS  = 21
	eapPEAP  = 25
	eapMSCV2 = 26
)

// MobileConfigTLS is an Apple profile for EAP-TLS with one issued client
// certificate: the school CA, the PKCS#12 as a com.apple.security.pkcs12
// payload (its password is not in the profile: the device asks for it on
// install, so the file alone opens nothing), and per SSID a
// com.apple.wifi.managed payload that logs in with that identity and
// trusts only the CA and the server name.
func (o Onboarding) MobileConfigTLS(iss Issued) ([]byte, error) {
	if len(o.SSIDs) == 0 {
		return nil, errors.New("pki: no Wi-Fi networks are configured for WPA-Enterprise")
	}
	if len(iss.PKCS12) == 0 {
		return nil, errors.New("pki: no certificate to put in the profile")
	}
	base := "net.gatehouse." + o.ServerName + ".tls." + iss.Cert.Serial
	caUUID, idUUID := o.uuidFor("ca"), o.uuidFor("identity:"+iss.Cert.Serial)
	content := []any{
		(&dict{}).
			set("PayloadType", "com.apple.security.root").
			set("PayloadVersion", 1).
			set("PayloadIdentifier", base+".ca").
			set("PayloadUUID", caUUID).
			set("PayloadDisplayName", o.CA.Subject.CommonName).
			set("PayloadCertificateFileName", "school-ca.cer").
			set("PayloadContent", o.CA.Raw),
		(&dict{}).
			set("PayloadType", "com.apple.security.pkcs12").
			set("PayloadVersion", 1).
			set("PayloadIdentifier", base+".identity").
			set("PayloadUUID", idUUID).
			set("PayloadDisplayName", iss.Cert.Identity).
			set("PayloadCertificateFileName", iss.FileName).
			set("PayloadContent", iss.PKCS12),
	}
	for _, ssid := range o.SSIDs {
		if err := checkSSID(ssid); err != nil {
			return nil, fmt.Errorf("pki: mobileconfig: %w", err)
		}
		eap := (&dict{}).
			set("AcceptEAPTypes", []any{eapTLS}).
			set("UserName", iss.Cert.Identity).
			set("TLSTrustedServerNames", []any{o.ServerName}).
			set("PayloadCertificateAnchorUUID", []any{caUUID}).
			set("TLSMinimumVersion", "1.2")
		u := o.uuidFor("tls:" + iss.Cert.Serial + ":" + ssid)
		content = append(content, (&dict{}).
			set("PayloadType", "com.apple.wifi.managed").
			set("PayloadVersion", 1).
			set("PayloadIdentifier", base+".wifi."+u).
			set("PayloadUUID", u).
			set("PayloadDisplayName", "Wi-Fi "+ssid).
			set("SSID_STR", ssid).
			set("HIDDEN_NETWORK", false).
			set("AutoJoin", true).
			set("EncryptionType", "WPA2").
			set("IsHotspot", false).
			set("PayloadCertificateUUID", idUUID).
			set("EAPClientConfiguration", eap))
	}
	site := o.Site
	if site == "" {
		site = "School"
	}
	top := (&dict{}).
		set("PayloadType", "Configuration").
		set("PayloadVersion", 1).
		set("PayloadIdentifier", base).
		set("PayloadUUID", o.uuidFor("profile-tls:"+iss.Cert.Serial)).
		set("PayloadDisplayName", site+" Wi-Fi ("+iss.Cert.Identity+")").
		set("PayloadDescription", "Joins "+strings.Join(o.SSIDs, ", ")+" with the certificate of "+iss.Cert.Identity+".").
		set("PayloadOrganization", site).
		set("PayloadContent", content)
	return plistDoc(top)
}

func plistDoc(top *dict) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(xml.Header)
	b.WriteString(`<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">` + "\n")
	b.WriteString(`<plist version="1.0">` + "\n")
	if err := writePlist(&b, top, ""); err != nil {
		return nil, err
	}
	b.WriteString("</plist>\n")
	return b.Bytes(), nil
}

// MobileConfig is an Apple configuration profile (iOS, iPadOS, macOS): a
// com.apple.security.root payload with the CA and, per SSID, a
// com.apple.wifi.managed payload for WPA2/WPA3-Enterprise that accepts
// PEAP and TTLS (inner PAP), trusts only that CA (its payload UUID as the
// anchor) and only the configured server name, and sends the anonymous
// outer identity. The person types their username and Wi-Fi password
// when first joining. The profile is not signed: the device says
// "unverified", which the onboarding page explains.
func (o Onboarding) MobileConfig() ([]byte, error) {
	if len(o.SSIDs) == 0 {
		return nil, errors.New("pki: no Wi-Fi networks are configured for WPA-Enterprise")
	}
	base := "net.gatehouse." + o.ServerName
	caUUID := o.uuidFor("ca")
	content := []any{(&dict{}).
		set("PayloadType", "com.apple.security.root").
		set("PayloadVersion", 1).
		set("PayloadIdentifier", base+".ca").
		set("PayloadUUID", caUUID).
		set("PayloadDisplayName", o.CA.Subject.CommonName).
		set("PayloadCertificateFileName", "school-ca.cer").
		set("PayloadContent", o.CA.Raw)}
	for _, ssid := range o.SSIDs {
		if err := checkSSID(ssid); err != nil {
			return nil, fmt.Errorf("pki: mobileconfig: %w", err)
		}
		eap := (&dict{}).
			set("AcceptEAPTypes", []any{eapPEAP, eapTTLS}).
			set("TTLSInnerAuthentication", "PAP").
			set("OuterIdentity", o.AnonymousIdentity()).
			set("TLSTrustedServerNames", []any{o.ServerName}).
			set("PayloadCertificateAnchorUUID", []any{caUUID}).
			set("TLSMinimumVersion", "1.2")
		content = append(content, (&dict{}).
			set("PayloadType", "com.apple.wifi.managed").
			set("PayloadVersion", 1).
			set("PayloadIdentifier", base+".wifi."+o.uuidFor("ssid:"+ssid)).
			set("PayloadUUID", o.uuidFor("ssid:"+ssid)).
			set("PayloadDisplayName", "Wi-Fi "+ssid).
			set("SSID_STR", ssid).
			set("HIDDEN_NETWORK", false).
			set("AutoJoin", true).
			set("EncryptionType", "WPA2"). // WPA2 and WPA3 Enterprise alike
			set("IsHotspot", false).
			set("EAPClientConfiguration", eap))
	}
	site := o.Site
	if site == "" {
		site = "School"
	}
	top := (&dict{}).
		set("PayloadType", "Configuration").
		set("PayloadVersion", 1).
		set("PayloadIdentifier", base).
		set("PayloadUUID", o.uuidFor("profile")).
		set("PayloadDisplayName", site+" Wi-Fi").
		set("PayloadDescription", "Joins "+strings.Join(o.SSIDs, ", ")+" and checks that the network really is "+o.ServerName+".").
		set("PayloadOrganization", site).
		set("PayloadRemovalDisallowed", false).
		set("PayloadContent", content)
	return plistDoc(top)
}

// windowsProfile is a WLAN profile (schema
// http://www.microsoft.com/networking/WLAN/profile/v1) for PEAP with
// EAP-MSCHAPv2: WPA2-Enterprise with AES (which Windows also uses on a
// WPA2/WPA3 transition network), server validation against the CA's
// thumbprint and the server name, no prompt to trust another server, and
// Windows' own login not used (the Wi-Fi password is the person's own).
var windowsProfile = template.Must(template.New("wlan").Funcs(template.FuncMap{"x": xmlText}).Parse(`<?xml version="1.0" encoding="UTF-8"?>
<WLANProfile xmlns="http://www.microsoft.com/networking/WLAN/profile/v1">
	<name>{{x .SSID}}</name>
	<SSIDConfig>
		<SSID>
			<hex>{{.Hex}}</hex>
			<name>{{x .SSID}}</name>
		</SSID>
		<nonBroadcast>false</nonBroadcast>
	</SSIDConfig>
	<connectionType>ESS</connectionType>
	<connectionMode>auto</connectionMode>
	<MSM>
		<security>
			<authEncryption>
				<authentication>WPA2</authentication>
				<encryption>AES</encryption>
				<useOneX>true</useOneX>
			</authEncryption>
			<PMKCacheMode>enabled</PMKCacheMode>
			<PMKCacheTTL>720</PMKCacheTTL>
			<PMKCacheSize>128</PMKCacheSize>
			<preAuthMode>disabled</preAuthMode>
			<OneX xmlns="http://www.microsoft.com/networking/OneX/v1">
				<authMode>user</authMode>
				<EAPConfig>
					<EapHostConfig xmlns="http://www.microsoft.com/provisioning/EapHostConfig">
						<EapMethod>
							<Type xmlns="http://www.microsoft.com/provisioning/EapCommon">25</Type>
							<VendorId xmlns="http://www.microsoft.com/provisioning/EapCommon">0</VendorId>
							<VendorType xmlns="http://www.microsoft.com/provisioning/EapCommon">0</VendorType>
							<AuthorId xmlns="http://www.microsoft.com/provisioning/EapCommon">0</AuthorId>
						</EapMethod>
						<Config xmlns="http://www.microsoft.com/provisioning/EapHostConfig">
							<Eap xmlns="http://www.microsoft.com/provisioning/BaseEapConnectionPropertiesV1">
								<Type>25</Type>
								<EapType xmlns="http://www.microsoft.com/provisioning/MsPeapConnectionPropertiesV1">
									<ServerValidation>
										<DisableUserPromptForServerValidation>true</DisableUserPromptForServerValidation>
										<ServerNames>{{x .ServerName}}</ServerNames>
										<TrustedRootCA>{{.Thumbprint}}</TrustedRootCA>
									</ServerValidation>
									<FastReconnect>true</FastReconnect>
									<InnerEapOptional>false</InnerEapOptional>
									<Eap xmlns="http://www.microsoft.com/provisioning/BaseEapConnectionPropertiesV1">
										<Type>26</Type>
										<EapType xmlns="http://www.microsoft.com/provisioning/MsChapV2ConnectionPropertiesV1">
											<UseWinLogonCredentials>false</UseWinLogonCredentials>
										</EapType>
									</Eap>
									<EnableQuarantineChecks>false</EnableQuarantineChecks>
									<RequireCryptoBinding>false</RequireCryptoBinding>
									<PeapExtensions>
										<PerformServerValidation xmlns="http://www.microsoft.com/provisioning/MsPeapConnectionPropertiesV2">true</PerformServerValidation>
										<AcceptServerName xmlns="http://www.microsoft.com/provisioning/MsPeapConnectionPropertiesV2">true</AcceptServerName>
									</PeapExtensions>
								</EapType>
							</Eap>
						</Config>
					</EapHostConfig>
				</EAPConfig>
			</OneX>
		</security>
	</MSM>
</WLANProfile>
`))

func xmlText(s string) (string, error) {
	var b strings.Builder
	err := xml.EscapeText(&b, []byte(s))
	return b.String(), err
}

// WindowsProfile is the WLAN profile XML for one SSID, for
// `netsh wlan add profile filename=...` after the CA is installed in the
// machine's Trusted Root Certification Authorities (the profile names the
// CA by thumbprint; it cannot carry it).
func (o Onboarding) WindowsProfile(ssid string) ([]byte, error) {
	if err := checkSSID(ssid); err != nil {
		return nil, fmt.Errorf("pki: windows profile: %w", err)
	}
	// TrustedRootCA is the SHA-1 thumbprint as Windows writes it: hex
	// bytes separated by spaces.
	th := Thumbprint(o.CA)
	var sp []string
	for i := 0; i < len(th); i += 2 {
		sp = append(sp, th[i:i+2])
	}
	var b bytes.Buffer
	err := windowsProfile.Execute(&b, struct {
		SSID, Hex, ServerName, Thumbprint string
	}{ssid, strings.ToUpper(hex.EncodeToString([]byte(ssid))), o.ServerName, strings.Join(sp, " ")})
	if err != nil {
		return nil, fmt.Errorf("pki: windows profile: %w", err)
	}
	return b.Bytes(), nil
}

// Setting is one line of the settings a person types on Android or
// ChromeOS.
type Setting struct{ Name, Value string }

// AndroidSettings are the fields of Android 11+'s "Add network" screen
// (ChromeOS asks for the same) for PEAP with MSCHAPv2; Android 11+ will
// not save an enterprise network without a CA and a domain.
func (o Onboarding) AndroidSettings() []Setting {
	return []Setting{
		{"Security", "WPA/WPA2/WPA3-Enterprise (802.1x EAP)"},
		{"EAP method", "PEAP"},
		{"Phase 2 authentication", "MSCHAPV2"},
		{"CA certificate", "the school CA installed from this page (named " + o.CA.Subject.CommonName + ")"},
		{"Online certificate status", "Do not validate"},
		{"Domain", o.ServerName},
		{"Identity", "your school username"},
		{"Anonymous identity", o.AnonymousIdentity()},
		{"Password", "your Wi-Fi password"},
	}
}
