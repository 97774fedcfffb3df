package slackbot

import (
	"strings"
	"time"
	"unicode"
)

// Slack's rules: lowercase letters, digits, hyphens and underscores, at
// most 80 characters.
const maxChannelName = 80

// channelName fills a template: {service} {yyyymmdd} {slug} {case}
// {codename}. The result obeys Slack's rules whatever the inputs hold.
func channelName(tmpl string, vars map[string]string, prefix string) string {
	r := tmpl
	for k, v := range vars {
		r = strings.ReplaceAll(r, "{"+k+"}", v)
	}
	r = slugify(prefix + r)
	if len(r) > maxChannelName {
		r = strings.TrimRight(r[:maxChannelName], "-_")
	}
	if r == "" {
		r = "incident"
	}
	return r
}

// slugify lowercases and turns every run of other characters (spaces,
// punctuation, letters outside ASCII) into one hyphen.
func slugify(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_':
			b.WriteRune(r)
			dash = false
		case r >= 'A' && r <= 'Z':
			b.WriteRune(unicode.ToLower(r))
			dash = false
		default:
			if !dash && b.Len() > 0 {
				b.WriteByte('-')
				dash = true
			}
		}
	}
	return strings.Trim(b.String(), "-")
}

func nameVars(service, title, caseNumber, codename string, declared time.Time) map[string]string {
	return map[string]string{
		"service":  service,
		"yyyymmdd": declared.UTC().Format("20060102"),
		"slug":     slug(title, 40),
		"case":     caseNumber,
		"codename": codename,
	}
}

func slug(s string, max int) string {
	s = slugify(s)
	if len(s) > max {
		s = s[:max]
		if i := strings.LastIndexByte(s, '-'); i > max/2 {
			s = s[:i]
		}
	}
	return strings.Trim(s, "-")
}
