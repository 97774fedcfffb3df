package pgtest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

// Without the server's programs the harness fails and says what to
// install; it never skips.
func TestMissingServerSaysWhatToInstall(t *testing.T) {
	notFound := func(string) (string, error) { return "", errors.New("not found") }
	_, err := findBin(notFound, filepath.Join(t.TempDir(), "*", "bin"))
	if err == nil || !strings.Contains(err.Error(), "apt-get install -y postgresql-15") {
		t.Errorf("error %v; want one that says to install postgresql-15", err)
	}
	dir := filepath.Join(t.TempDir(), "15", "bin")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "initdb"), nil, 0o755); err != nil {
		t.Fatal(err)
	}
	if got, err := findBin(notFound, filepath.Join(filepath.Dir(filepath.Dir(dir)), "*", "bin")); err != nil || got != dir {
		t.Errorf("found %q, %v; want %s", got, err, dir)
	}
}

// Each test's database is its own: what one creates, another does not
// see; a copy holds what its source held.
func TestDatabasesAreIsolated(t *testing.T) {
	ctx := context.Background()
	a, b := Database(t), Database(t)
	exec := func(url, sql string) error {
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, sql)
		return err
	}
	if err := exec(a, `CREATE TABLE t (x int)`); err != nil {
		t.Fatal(err)
	}
	if err := exec(b, `SELECT * FROM t`); err == nil {
		t.Error("a table of one test's database is in another's")
	}
	Copy(t, a, b)
	if err := exec(b, `SELECT * FROM t`); err != nil {
		t.Errorf("the copy lacks its source's table: %v", err)
	}
}

// TestCPUCountsClosedConnections: the server's CPU time grows by the work
// of a connection once it is closed.
func TestCPUCountsClosedConnections(t *testing.T) {
	url := Database(t)
	before, err := Shared().CPU()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	if err := conn.QueryRow(ctx, `SELECT sum(i) FROM generate_series(1, 3000000) AS i`).Scan(&sum); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	for range 100 { // the backend's exit is reaped a moment later
		after, err := Shared().CPU()
		if err != nil {
			t.Fatal(err)
		}
		if after > before {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Errorf("the server's CPU time stayed at %v after a connection summed 3 million rows", before)
}
