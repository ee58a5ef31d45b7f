package processing

import (
	"encoding/json"
	"errors"
	"strings"

	"github.com/gamify/boost/domain"
)

func commerceCurrency(d *domain.TrackedData) (string, error) {
	var p struct {
		Currency string `json:"currency"`
	}
	if err := json.Unmarshal(d.Properties, &p); err != nil {
		return "", errors.New("properties are not an object")
	}
	return strings.ToUpper(p.Currency), nil
}
