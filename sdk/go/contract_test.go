package boost

import (
	"encoding/json"
	"os"
	"slices"
	"testing"
)

// TestSDKFollowsTheContract ties the SDK's limits and event lists to the
// server's contract (contract/ingestion.json, generated from the server's
// domain package): a rule changed there and not here fails this test.
func TestSDKFollowsTheContract(t *testing.T) {
	b, err := os.ReadFile("../../contract/ingestion.json")
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		CommerceEvents []string `json:"commerceEvents"`
		IdentifyEvents []string `json:"identifyEvents"`
		Limits         struct {
			MaxBatchItems  int   `json:"maxBatchItems"`
			MaxBodyBytes   int   `json:"maxBodyBytes"`
			MaxNameChars   int   `json:"maxNameChars"`
			MaxIDChars     int   `json:"maxIdChars"`
			MaxObjectBytes int   `json:"maxObjectBytes"`
			MaxAmount      int64 `json:"maxAmount"`
		} `json:"limits"`
	}
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	for _, x := range []struct {
		name      string
		sdk, want int64
	}{
		{"MaxBatchSize", MaxBatchSize, int64(c.Limits.MaxBatchItems)},
		{"MaxRequestBytes", MaxRequestBytes, int64(c.Limits.MaxBodyBytes)},
		{"MaxPropertiesBytes", MaxPropertiesBytes, int64(c.Limits.MaxObjectBytes)},
		{"MaxNameLength (names)", MaxNameLength, int64(c.Limits.MaxNameChars)},
		{"MaxNameLength (ids)", MaxNameLength, int64(c.Limits.MaxIDChars)},
		{"MaxAmount", MaxAmount, c.Limits.MaxAmount},
	} {
		if x.sdk != x.want {
			t.Errorf("%s is %d; the contract says %d", x.name, x.sdk, x.want)
		}
	}
	if !slices.Equal(commerceEvents, c.CommerceEvents) {
		t.Errorf("commerce events %v; the contract says %v", commerceEvents, c.CommerceEvents)
	}
	if !slices.Contains(c.IdentifyEvents, EventIdentify) {
		t.Errorf("the SDK identifies with %q, which the contract does not list (%v)", EventIdentify, c.IdentifyEvents)
	}
}
