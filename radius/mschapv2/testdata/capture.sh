#!/bin/sh
# How interop.txt was recorded: FreeRADIUS 3.2.1 (Debian) as the server
# and eapol_test (wpa_supplicant 2.10) as the peer, EAP-MSCHAPv2 as the
# outer method, in a private network namespace (run as root):
#   unshare -n sh capture.sh
# The raddb is a copy of /etc/freeradius/3.0 with mods-enabled/eap reduced
# to "eap { default_eap_type = mschapv2  mschapv2 { send_error = no } }",
# sites-enabled/inner-tunnel removed, user/group root, and
# mods-config/files/authorize holding: bob Cleartext-Password := "hello world pw"
set -e
D=${D:-/tmp/mschap-fr}
ip link set lo up
freeradius -X -d "$D/raddb" > "$D/fr.log" 2>&1 &
FR=$!
sleep 3
cat > "$D/eapol.conf" <<'CONF'
network={
	key_mgmt=IEEE8021X
	eap=MSCHAPV2
	identity="bob"
	password="hello world pw"
}
CONF
timeout 20 eapol_test -c "$D/eapol.conf" -a 127.0.0.1 -s testing123 -r 0 > "$D/eapol.log" 2>&1 || true
kill $FR
grep -E "Attribute 79|Value: 0[12]|Derived key|MS-MPPE|MPPE keys OK|SUCCESS" "$D/eapol.log"
