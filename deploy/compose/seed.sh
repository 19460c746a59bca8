#!/bin/sh
# Seeds the support mailbox with the repository's test mails (tests/fixtures/mail)
# by writing them into its Maildir, as the test harness does.
set -eu
maildir=/srv/mail/support/Maildir
mkdir -p "$maildir/new" "$maildir/cur" "$maildir/tmp"
n=0
for mail in /fixtures/*.eml; do
  n=$((n + 1))
  cp "$mail" "$maildir/new/seed-$n.compose"
done
chown -R 5000:5000 /srv/mail
echo "seeded $n mails"
