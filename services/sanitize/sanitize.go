// Package sanitize cleans titles and free text where they leave the hub
// for a system that would act on what they hide: a mail header, a Slack
// channel or message, a JIRA or GitHub field. Events keep what was
// written; only the copy sent out is cleaned.
//
// Removed everywhere: terminal escape sequences (CSI such as "\x1b[31m",
// OSC such as "\x1b]0;title\x07", DCS/SOS/PM/APC strings, two-character
// escapes, and their C1 forms), C0 and C1 control characters, and the
// invisible characters that reorder or hide text: the bidirectional
// controls (U+061C, U+200E/F, U+202A–U+202E, U+2066–U+2069) and zero-width
// or annotation characters (U+180E, U+200B, U+2060–U+2064, U+FEFF,
// U+FFF9–U+FFFB). Zero-width joiners (U+200C, U+200D) stay: scripts and
// emoji need them.
package sanitize

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Line is for a single-line field (title, summary, subject, topic): line
// breaks, tabs and other controls become one space per run, escape
// sequences and invisible characters go, and the ends are trimmed.
func Line(s string) string {
	return strings.TrimSpace(clean(s, false))
}

// Text is for multi-line text (note, message, description): line breaks
// stay as "\n" (CRLF, CR, NEL, U+2028 and U+2029 included) and tabs stay;
// other controls, escape sequences and invisible characters go.
func Text(s string) string {
	return clean(s, true)
}

const (
	esc = 0x1b
	bel = 0x07
	// C1 controls that open a sequence like their ESC forms.
	c1DCS, c1SOS, c1CSI, c1ST, c1OSC, c1PM, c1APC = 0x90, 0x98, 0x9b, 0x9c, 0x9d, 0x9e, 0x9f
)

func clean(s string, multiline bool) string {
	if isClean(s) {
		return s
	}
	rs := []rune(s)
	var b strings.Builder
	b.Grow(len(s))
	space := false // the last rune written is a space standing for controls
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		switch {
		case r == esc || r == c1CSI || r == c1OSC || r == c1DCS || r == c1SOS || r == c1PM || r == c1APC:
			i = skipEscape(rs, i) - 1
		case r == '\r' || r == '\n' || r == 0x85 || r == '\u2028' || r == '\u2029':
			if r == '\r' && i+1 < len(rs) && rs[i+1] == '\n' {
				i++
			}
			if multiline {
				b.WriteByte('\n')
			} else if !space {
				b.WriteByte(' ')
				space = true
			}
		case r == '\t' && multiline:
			b.WriteByte('\t')
			space = false
		case unicode.IsControl(r):
			if !multiline && !space {
				b.WriteByte(' ')
				space = true
			}
		case invisible(r):
		default:
			b.WriteRune(r)
			space = r == ' '
		}
	}
	return b.String()
}

// isClean reports whether s needs no change (the common case costs one
// scan); invalid UTF-8 is rewritten, as U+FFFD.
func isClean(s string) bool {
	for _, r := range s {
		if r < 0x20 || r >= 0x7f && r <= 0x9f || r == '\u2028' || r == '\u2029' || invisible(r) || r == utf8.RuneError {
			return false
		}
	}
	return true
}

// invisible reports the format characters that reorder or hide text.
func invisible(r rune) bool {
	switch {
	case unicode.Is(unicode.Bidi_Control, r):
		return true
	case r == '\u180E', r == '\u200B', r >= '\u2060' && r <= '\u2064', r == '\uFEFF', r >= '\uFFF9' && r <= '\uFFFB':
		return true
	}
	return false
}

// skipEscape returns the index after the escape sequence that starts at
// rs[i] (ECMA-48). A sequence cut short by another control ends before it,
// so the text after a broken sequence is kept.
func skipEscape(rs []rune, i int) int {
	r := rs[i]
	i++
	if r == esc {
		if i == len(rs) {
			return i
		}
		switch rs[i] {
		case '[':
			r = c1CSI
		case ']':
			r = c1OSC
		case 'P':
			r = c1DCS
		case 'X':
			r = c1SOS
		case '^':
			r = c1PM
		case '_':
			r = c1APC
		default:
			// nF and Fp/Fe/Fs escapes: intermediates 0x20–0x2F, then one
			// final character 0x30–0x7E.
			for i < len(rs) && rs[i] >= 0x20 && rs[i] <= 0x2f {
				i++
			}
			if i < len(rs) && rs[i] >= 0x30 && rs[i] <= 0x7e {
				i++
			}
			return i
		}
		i++
	}
	if r == c1CSI {
		// Parameters and intermediates 0x20–0x3F, then a final 0x40–0x7E.
		for i < len(rs) && rs[i] >= 0x20 && rs[i] <= 0x3f {
			i++
		}
		if i < len(rs) && rs[i] >= 0x40 && rs[i] <= 0x7e {
			i++
		}
		return i
	}
	// A control string (OSC, DCS, SOS, PM, APC) runs to BEL or ST
	// (ESC \ or U+009C).
	for i < len(rs) {
		switch {
		case rs[i] == bel || rs[i] == c1ST:
			return i + 1
		case rs[i] == esc && i+1 < len(rs) && rs[i+1] == '\\':
			return i + 2
		case unicode.IsControl(rs[i]) && rs[i] != '\t':
			return i
		}
		i++
	}
	return i
}

// Truncate cuts s to at most n bytes, never inside a character: a title
// cut in the middle of one is not valid UTF-8, and no declaration takes it.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
