package slackbot

import (
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/hikeshi/hikeshi/adapters/slacktest"
	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/config"
	"github.com/hikeshi/hikeshi/services/incident"
)

// nameOf names an incident with the default templates and cfg's zone.
func nameOf(t *testing.T, cfg Config, st incident.State) string {
	t.Helper()
	d := defaults()
	cfg.ChannelTemplate, cfg.ConfidentialTemplate, cfg.DrillPrefix = d.ChannelTemplate, d.ConfidentialTemplate, d.DrillPrefix
	name := (&Bot{cfg: cfg}).channelName(&st)
	if code := slacktest.ChannelNameError(name); code != "" {
		t.Errorf("%q: Slack would answer %s", name, code)
	}
	if strings.HasPrefix(name, "-") || strings.HasSuffix(name, "-") || strings.Contains(name, "--") {
		t.Errorf("%q: stray hyphens", name)
	}
	return name
}

func TestChannelNamesKeepEveryScriptsWords(t *testing.T) {
	day := time.Date(2026, 12, 3, 4, 0, 0, 0, time.UTC)
	kanji40 := strings.Repeat("障", 40)
	for _, tc := range []struct{ service, title, want string }{
		{"payments", "決済APIで503エラー多発", "payments-20261203i-決済apiで503エラー多発"},
		{"payments", "データベース障害", "payments-20261203i-データベース障害"},
		{"サービスA", "DB障害", "サービスa-20261203i-db障害"},
		{"checkout", "Ölpreis-Dienst STÖRUNG", "checkout-20261203i-ölpreis-dienst-störung"},
		{"api", "Ошибка API", "api-20261203i-ошибка-api"},
		{"web", "हिंदी पेज धीमा", "web-20261203i-हिंदी-पेज-धीमा"}, // vowel signs stay with their letters
		{"payments", "Disk full\r\nBcc: x@example.com", "payments-20261203i-disk-full-bcc-x-example-com"},
		{"payments", "\x1b[31mDisk\x1b[0m full \u202Ecod.exe", "payments-20261203i-disk-full-cod-exe"},
		{"payments", "Card payments... failing -- now!", "payments-20261203i-card-payments-failing-now"},
		// No word: the case number stands in, so two such incidents differ.
		{"payments", "🔥🔥🔥", "payments-20261203i-inc-7"},
		{"payments", "!!!", "payments-20261203i-inc-7"},
		// The slug's 40 are characters, not bytes (40 kanji are 120 bytes).
		{"payments", kanji40 + "X", "payments-20261203i-" + kanji40},
	} {
		st := incident.State{ID: "i1", CaseNumber: "INC-7", Service: tc.service, Title: tc.title, DeclaredAt: day}
		if got := nameOf(t, Config{}, st); got != tc.want {
			t.Errorf("%q in %s: %q, want %q", tc.title, tc.service, got, tc.want)
		}
	}
}

func TestLongNamesFitSlacksLimitInCharacters(t *testing.T) {
	st := incident.State{CaseNumber: "INC-7", Service: strings.Repeat("決済", 40), Title: "障害", DeclaredAt: time.Now()}
	name := nameOf(t, Config{}, st)
	if n := utf8.RuneCountInString(name); n != maxChannelName {
		t.Errorf("%q has %d characters (%d bytes), want exactly %d", name, n, len(name), maxChannelName)
	}
	for n := 2; n <= 20; n++ {
		s := withSuffix(name, n)
		if code := slacktest.ChannelNameError(s); code != "" || !strings.HasSuffix(s, "-"+strconv.Itoa(n)) {
			t.Errorf("suffix %d: %q (%s)", n, s, code)
		}
	}
	// A character beyond the Basic Multilingual Plane counts twice, as in
	// Slack's clients: the name stays within 80 by either count.
	st.Service = strings.Repeat("𠮷", 60)
	if name := nameOf(t, Config{}, st); nameLen(name) > maxChannelName || !utf8.ValidString(name) {
		t.Errorf("%q: %d UTF-16 units", name, nameLen(name))
	}
}

func loadSlack(t *testing.T, yaml string) (Config, error) {
	t.Helper()
	f, err := config.Parse("hikeshi.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	return Load(f)
}

// An incident declared at 08:00 in Tokyo (23:00 UTC the day before) is
// named with Tokyo's date.
func TestChannelDateInTheConfiguredTimezone(t *testing.T) {
	declared := time.Date(2026, 12, 2, 23, 0, 0, 0, time.UTC)
	st := incident.State{CaseNumber: "INC-7", Service: "payments", Title: "決済障害", DeclaredAt: declared}
	for _, tc := range []struct{ yaml, want string }{
		{"slack:\n  timezone: Asia/Tokyo\n", "payments-20261203i-決済障害"},
		{"slack: {}\n", "payments-20261202i-決済障害"},
		{"slack:\n  timezone: UTC\n", "payments-20261202i-決済障害"},
	} {
		cfg, err := loadSlack(t, tc.yaml)
		if err != nil {
			t.Fatal(err)
		}
		if got := nameOf(t, cfg, st); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.yaml, got, tc.want)
		}
	}
	for _, bad := range []string{"Asia/Tokio", "JST+9", "Local"} {
		_, err := loadSlack(t, "slack:\n  timezone: "+bad+"\n")
		if err == nil || !strings.Contains(err.Error(), "slack.timezone") || !strings.Contains(err.Error(), "Asia/Tokyo") {
			t.Errorf("timezone %q: %v", bad, err)
		}
	}
}

// Through Slack: Japanese titles make Japanese channels, and two titles
// without words make two channels.
func TestUnicodeChannelsCreatedInSlack(t *testing.T) {
	r := newRig(t, "  timezone: Asia/Tokyo\n")
	want := map[string]string{}
	for _, title := range []string{"決済APIで503エラー多発", "データベース障害", "🔥🔥", "🔥🔥🔥"} {
		st := r.h.Declare(t, incident.Declare{Title: title, Service: "payments", Severity: "SEV3", DeclaredBy: "UALICE001"})
		r.waitFor(st.ID, events.TypeSlackChannelLinked, 1)
		want[title] = st.DeclaredAt.In(r.cfg.location()).Format("20060102")
	}
	for _, name := range []string{"payments-" + want["決済APIで503エラー多発"] + "i-決済apiで503エラー多発",
		"payments-" + want["データベース障害"] + "i-データベース障害",
		"payments-" + want["🔥🔥"] + "i-inc-3", "payments-" + want["🔥🔥🔥"] + "i-inc-4"} {
		if _, ok := r.slack.ChannelByName(name); !ok {
			t.Errorf("no channel %s", name)
		}
	}
	if n := r.counts()["conversations.create"]; n != 4 {
		t.Errorf("%d channels created, want 4", n)
	}
}
