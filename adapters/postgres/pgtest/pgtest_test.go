package pgtest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
