package slacktest

import (
	"strings"
	"testing"
)

// The fake refuses the names Slack refuses.
func TestChannelNameError(t *testing.T) {
	for name, want := range map[string]string{
		"payments-20261203i-card-payments":  "",
		"payments-20261203i-決済apiで503エラー多発": "",
		"サービスa-20240101i-db障害":              "",
		"web-हिंदी-पेज":                     "",
		"snake_case_99":                     "",
		strings.Repeat("障", 80):             "",
		"":                                  "invalid_name_required",
		strings.Repeat("障", 81):             "invalid_name_maxlength",
		"Payments":                          "invalid_name_specials",
		"サービスA":                             "invalid_name_specials",
		"card payments":                     "invalid_name_specials",
		"v1.2-outage":                       "invalid_name_specials",
		"disk-full\r\nbcc":                  "invalid_name_specials",
		"fire-🔥":                            "invalid_name_specials",
		"bad-\xff":                          "invalid_name_specials",
		"---":                               "invalid_name_punctuation",
	} {
		if got := ChannelNameError(name); got != want {
			t.Errorf("%q: %q, want %q", name, got, want)
		}
	}
}
