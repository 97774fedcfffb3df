package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type sample struct {
	Enabled  bool              `yaml:"enabled"`
	Interval string            `yaml:"interval"`
	Teams    map[string]string `yaml:"teams"`
}

func TestSectionDecodesStrictly(t *testing.T) {
	f, err := Parse("hikeshi.yaml", []byte("sample:\n  enabled: true\n  teams: {payments: S123}\nother:\n  x: 1\n"))
	if err != nil {
		t.Fatal(err)
	}
	s := sample{Interval: "15m"}
	ok, err := f.Section("sample", &s)
	if err != nil || !ok {
		t.Fatalf("Section: ok=%v err=%v", ok, err)
	}
	if !s.Enabled || s.Interval != "15m" || s.Teams["payments"] != "S123" {
		t.Fatalf("decoded %+v; the default interval must survive", s)
	}
	if ok, err := f.Section("absent", &s); ok || err != nil {
		t.Fatalf("absent section: ok=%v err=%v", ok, err)
	}
	bad, _ := Parse("hikeshi.yaml", []byte("sample:\n  enabeld: true\n"))
	if _, err := bad.Section("sample", &sample{}); err == nil || !strings.Contains(err.Error(), "enabeld") {
		t.Fatalf("typo in a key: err %v, want it named", err)
	}
	if err := f.CheckSections([]string{"sample"}); err == nil || !strings.Contains(err.Error(), "other") {
		t.Fatalf("unknown section: err %v", err)
	}
	if err := f.CheckSections([]string{"sample", "other"}); err != nil {
		t.Fatal(err)
	}
}

func TestLoad(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "hikeshi.yaml")
	if f, err := Load(missing, false); err != nil || f.Has("slack") {
		t.Fatalf("optional missing file: %v", err)
	}
	if _, err := Load(missing, true); err == nil {
		t.Fatal("a file named explicitly must exist")
	}
	if err := os.WriteFile(missing, []byte("a: [\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(missing, true); err == nil {
		t.Fatal("invalid YAML accepted")
	}
}

func TestSecret(t *testing.T) {
	t.Setenv("HIKESHI_TEST_SECRET", " s3cret\n")
	if v, err := Secret("slack", "bot_token", "HIKESHI_TEST_SECRET"); err != nil || v != "s3cret" {
		t.Fatalf("Secret = %q, %v", v, err)
	}
	if _, err := Secret("slack", "bot_token", "HIKESHI_TEST_UNSET"); err == nil || !strings.Contains(err.Error(), "HIKESHI_TEST_UNSET") {
		t.Fatalf("unset secret: %v", err)
	}
	if _, err := Secret("slack", "bot_token", ""); err == nil {
		t.Fatal("no variable named: no error")
	}
}
