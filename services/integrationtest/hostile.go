package integrationtest

import (
	"strings"
	"testing"
	"unicode"
)

// HostileTitle tries to add a mail header and breaks a one-line field;
// HostileNote carries a terminal title change (OSC) and a colour (CSI).
// What every integration must send instead: SafeTitle, and the note
// without its escapes.
const (
	HostileTitle = "Disk full\r\nBcc: x@example.com"
	SafeTitle    = "Disk full Bcc: x@example.com"
	HostileNote  = "disk at 100%\x1b]0;pwned\x07 on \x1b[31mdb-1\x1b[0m"
	SafeNote     = "disk at 100% on db-1"
)

// CheckClean fails t when s, sent to another system as where, holds a
// control character (line breaks and tabs too, unless multiline), the
// hidden OSC payload, or an invisible bidi control.
func CheckClean(t testing.TB, where, s string, multiline bool) {
	t.Helper()
	bad := strings.IndexFunc(s, func(r rune) bool {
		if multiline && (r == '\n' || r == '\t') {
			return false
		}
		return unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r)
	})
	if bad >= 0 || strings.Contains(s, "pwned") {
		t.Errorf("%s carries raw control text: %q", where, s)
	}
}
