#!/bin/sh
# keepalived `notify` script of the balancer pair (keepalived-lb1.conf): logs every VRRP state change of this
# instance, one line in the file named by the first argument and one in syslog (tag licproxy-vrrp).
# keepalived appends: TYPE ("INSTANCE" or "GROUP"), NAME, STATE (MASTER|BACKUP|FAULT|STOP), PRIORITY.
# Install: install -m 0755 -o root licproxy-notify.sh /etc/keepalived/
log="$1"
shift
msg="$(hostname) vrrp $1 $2 is now $3 (priority ${4:-?})"
printf '%s %s\n' "$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)" "$msg" >> "$log"
logger -t licproxy-vrrp -- "$msg" 2>/dev/null || true
exit 0
