package slackbot

import (
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf16"

	"github.com/hikeshi/hikeshi/services/sanitize"
)

// Slack's rule for channel names (conversations.create and .rename):
// lowercase letters, numbers, hyphens and underscores only, no spaces or
// periods, at most 80 characters. Letters and numbers are any script's:
// #サービスa-20240101i-db障害 is a valid name.
//
// The 80 are characters, not bytes: 障 is three bytes of UTF-8 but one
// character, and a name cut at 80 bytes would keep 26 kanji of 80 and
// could end inside one. nameLen counts UTF-16 code units: one per
// character for the whole Basic Multilingual Plane (Latin, kana, the
// common kanji), two for the rare characters beyond it (such as 𠮷). That
// is the length of a JavaScript string, as a web client counts, and never
// less than the count of code points, so a name fits whichever way the
// limit is counted.
const maxChannelName = 80

// maxSlug is the length of the title's part of a name.
const maxSlug = 40

func nameLen(s string) int {
	n := 0
	for _, r := range s {
		n += utf16.RuneLen(r)
	}
	return n
}

// cut shortens s to at most max (as nameLen counts), never inside a
// character.
func cut(s string, max int) string {
	n := 0
	for i, r := range s {
		if n += utf16.RuneLen(r); n > max {
			return s[:i]
		}
	}
	return s
}

// channelName fills a template: {service} {yyyymmdd} {slug} {case}
// {codename}. The result obeys Slack's rules whatever the inputs hold. A
// title with no letter or digit (only emoji or punctuation) gives no slug:
// the case number stands in, so that two such incidents of a day do not
// share a name.
func channelName(tmpl string, vars map[string]string, prefix string) string {
	if vars["slug"] == "" && !strings.Contains(tmpl, "{case}") {
		vars["slug"] = slugify(vars["case"])
	}
	r := tmpl
	for k, v := range vars {
		r = strings.ReplaceAll(r, "{"+k+"}", v)
	}
	r = slugify(prefix + r)
	if nameLen(r) > maxChannelName {
		r = strings.TrimRight(cut(r, maxChannelName), "-_")
	}
	if r == "" {
		r = "incident"
	}
	return r
}

// withSuffix is the n-th name tried for base (n > 1): base shortened so
// that "-n" fits within Slack's limit.
func withSuffix(base string, n int) string {
	sfx := "-" + strconv.Itoa(n)
	return strings.TrimRight(cut(base, maxChannelName-len(sfx)), "-_") + sfx
}

// slugify keeps letters and numbers of any script, lowercased where they
// have case, underscores, and the combining marks that belong to a kept
// letter; every run of anything else (spaces, periods, punctuation,
// symbols, emoji, controls) becomes one hyphen, and none is left at
// either end.
func slugify(s string) string {
	var b strings.Builder
	dash, word := false, false // a hyphen was written last; a letter, number or mark was
	for _, r := range s {
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r) || r == '_' || word && unicode.IsMark(r):
			b.WriteRune(unicode.ToLower(r))
			dash, word = false, r != '_'
		default:
			if !dash && b.Len() > 0 {
				b.WriteByte('-')
				dash = true
			}
			word = false
		}
	}
	return strings.Trim(b.String(), "-")
}

// nameVars are the template's values; declared is in the configured time
// zone, so {yyyymmdd} is the local date of the declaration.
func nameVars(service, title, caseNumber, codename string, declared time.Time) map[string]string {
	return map[string]string{
		"service":  service,
		"yyyymmdd": declared.Format("20060102"),
		// Escape sequences go whole: their letters ("\x1b[31m") are no words.
		"slug":     slug(sanitize.Line(title), maxSlug),
		"case":     caseNumber,
		"codename": codename,
	}
}

// slug is the title's words within max, cut at a hyphen when one is in
// the second half.
func slug(s string, max int) string {
	s = slugify(s)
	if nameLen(s) > max {
		s = cut(s, max)
		if i := strings.LastIndexByte(s, '-'); i >= 0 && nameLen(s[:i]) > max/2 {
			s = s[:i]
		}
	}
	return strings.Trim(s, "-")
}
