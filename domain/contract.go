package domain

import "time"

// Request limits of the ingestion API, part of the contract with SDKs.
const (
	// MaxBatchItems bounds the events of one batch request.
	MaxBatchItems = 500
	// MaxBodyBytes bounds an ingestion request body (after gunzip).
	MaxBodyBytes = 512 << 10
)

// Contract is the ingestion contract as data: what an event may be and
// which rules apply to which names. The server enforces it (this package);
// the SDKs and the test stand-in load its exported form,
// contract/ingestion.json (regenerated and checked by
// TestContractFileIsCurrent), so a rule changed here and not there fails a
// test.
type Contract struct {
	Version int `json:"version"`
	// TrustedEvents need a secret key; CommerceEvents carry an order;
	// IdentifyEvents merge traits into the user.
	TrustedEvents  []string `json:"trustedEvents"`
	CommerceEvents []string `json:"commerceEvents"`
	IdentifyEvents []string `json:"identifyEvents"`
	// NameComparison says how the server compares names for those rules;
	// SDKs may pre-check with trimmed lower case, the server decides.
	NameComparison string `json:"nameComparison"`
	Limits         Limits `json:"limits"`
	// FieldAliases are the other names a field may be sent under.
	FieldAliases map[string][]string `json:"fieldAliases"`
	// Commerce says what a commerce event's properties must carry.
	Commerce    map[string]string `json:"commerce"`
	KeyPrefixes map[string]string `json:"keyPrefixes"`
	// CallEvents are the names calls without an event name of their own
	// are stored under (Segment's page, screen, alias and group); Boost's
	// SDKs send page views under the same name.
	CallEvents map[string]string `json:"callEvents"`
}

// Limits are the contract's bounds.
type Limits struct {
	MaxBatchItems        int    `json:"maxBatchItems"`
	MaxBodyBytes         int    `json:"maxBodyBytes"`
	MaxNameChars         int    `json:"maxNameChars"`
	MaxIDChars           int    `json:"maxIdChars"`
	MaxObjectBytes       int    `json:"maxObjectBytes"`
	MaxNesting           int    `json:"maxNesting"`
	MaxFutureSkewSeconds int    `json:"maxFutureSkewSeconds"`
	MinTime              string `json:"minTime"`
	MaxAmount            int64  `json:"maxAmount"`
}

// IngestionContract returns the contract this build enforces.
func IngestionContract() Contract {
	return Contract{
		Version:        1,
		TrustedEvents:  TrustedEvents,
		CommerceEvents: CommerceEvents,
		IdentifyEvents: []string{IdentifyEvent, ProfileUpdateEvent},
		NameComparison: "Unicode NFKC, case folded, default-ignorable code points removed, trimmed, then the UTS #39 " +
			"confusable skeleton; the stored name is never changed",
		Limits: Limits{MaxBatchItems: MaxBatchItems, MaxBodyBytes: MaxBodyBytes, MaxNameChars: MaxNameLen,
			MaxIDChars: MaxIDLen, MaxObjectBytes: MaxObjectBytes, MaxNesting: MaxNesting,
			MaxFutureSkewSeconds: int(MaxFutureSkew / time.Second), MinTime: MinTime.Format(time.RFC3339),
			MaxAmount: MaxAmount},
		FieldAliases: map[string][]string{"event": {"type"}, "properties": {"traits"}},
		Commerce: map[string]string{"orderId": "a non-empty string", "amount": "an integer number of minor units from 0 to maxAmount " +
			"(a number within floating-point error of one, such as 1999.0000000000002, is taken and stored as that integer)",
			"currency": "three ASCII letters (an ISO 4217 code)"},
		KeyPrefixes: map[string]string{string(KeyPublishable): KeyPublishable.prefix(), string(KeySecret): KeySecret.prefix()},
		CallEvents:  map[string]string{"page": PageEvent, "screen": ScreenEvent, "alias": AliasEvent, "group": GroupEvent},
	}
}
