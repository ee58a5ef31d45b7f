package domain_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/gamify/boost/domain"
)

// contractFile is the contract's exported form, which the SDKs' tests and
// the test stand-in load.
var contractFile = filepath.Join("..", "contract", "ingestion.json")

// TestContractFileIsCurrent fails when contract/ingestion.json is not what
// this build enforces. BOOST_UPDATE_CONTRACT=1 rewrites it.
func TestContractFileIsCurrent(t *testing.T) {
	want, err := json.MarshalIndent(domain.IngestionContract(), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, '\n')
	if os.Getenv("BOOST_UPDATE_CONTRACT") != "" {
		if err := os.WriteFile(contractFile, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(contractFile)
	if err != nil {
		t.Fatalf("%v (BOOST_UPDATE_CONTRACT=1 go test ./domain -run TestContractFileIsCurrent writes it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is stale: the domain's rules changed. Run BOOST_UPDATE_CONTRACT=1 go test ./domain -run "+
			"TestContractFileIsCurrent, then make the SDKs follow (their tests load the file).\nwant:\n%s", contractFile, want)
	}
}
