package sanitize

import "testing"

func TestLine(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"Disk full", "Disk full"},
		{"Disk full\r\nBcc: x@example.com", "Disk full Bcc: x@example.com"},
		{"a\nb\rc\x00d\u0085e\u2028f", "a b c d e f"},
		{"tab\there", "tab here"},
		{"\r\n  padded \n", "padded"},
		{"\x1b[31mred\x1b[0m alert", "red alert"},
		{"\x1b]0;pwned\x07title", "title"},
		{"\x1b]8;;https://evil.example\x1b\\link\x1b]8;;\x1b\\", "link"},
		{"\u009b1mbold\u009dx\u009c", "bold"},
		{"\x1bcreset", "reset"},
		{"\x1b(Bcharset", "charset"},
		{"\u202Egnp.exe\u202C \u2066iso\u2069 \u200Fx\u200B\uFEFF", "gnp.exe iso x"},
		{"決済APIで503エラー多発", "決済APIで503エラー多発"},
		{"👩\u200D💻 crew", "👩\u200D💻 crew"},
		{"bad \xff byte", "bad \uFFFD byte"},
		{"unterminated \x1b]0;title\nnext", "unterminated next"},
		{"trailing escape \x1b", "trailing escape"},
	} {
		if got := Line(tc.in); got != tc.want {
			t.Errorf("Line(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestText(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"rolled back\nto v41", "rolled back\nto v41"},
		{"crlf\r\nline\rcr\u2029para", "crlf\nline\ncr\npara"},
		{"see \x1b]0;pwned\x07the log", "see the log"},
		{"\x1b[2J\x1b[Hcleared", "cleared"},
		{"a\tb\x00c\x07d\x7f", "a\tbcd"},
		{"\u202Ereversed\u202C", "reversed"},
		{"  kept  as written  ", "  kept  as written  "},
	} {
		if got := Text(tc.in); got != tc.want {
			t.Errorf("Text(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
