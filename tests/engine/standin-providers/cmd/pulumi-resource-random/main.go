// Command pulumi-resource-random is a TEST-ONLY STAND-IN for the pulumi-random provider plugin
// (RandomString, RandomPassword, RandomBytes), written to the semantics of terraform-provider-random
// as bridged by pulumi-random. See ../../README.md.
package main

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"math/big"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"golang.org/x/crypto/bcrypt"

	"dare.local/standin-providers/internal/standin"
)

// The @pulumi/random version the program pins.
const version = "4.21.2"

func main() {
	standin.Main("random", version, map[string]standin.Resource{
		"random:index/randomString:RandomString":     stringResource(false),
		"random:index/randomPassword:RandomPassword": stringResource(true),
		"random:index/randomBytes:RandomBytes":       bytesResource(),
	})
}

const (
	upperChars     = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	lowerChars     = "abcdefghijklmnopqrstuvwxyz"
	numericChars   = "0123456789"
	defaultSpecial = "!@#$%&*()-_=+[]{}<>:?"
)

var (
	t            = resource.NewProperty(true)
	zero         = resource.NewProperty(0.0)
	stringInputs = []string{"keepers", "length", "lower", "minLower", "minNumeric", "minSpecial", "minUpper",
		"number", "numeric", "overrideSpecial", "special", "upper"}
)

// stringResource is random_string, or random_password (secret result, a bcrypt hash, id "none").
func stringResource(password bool) *standin.TF {
	r := &standin.TF{
		Inputs:   stringInputs,
		Required: []string{"length"},
		Computed: []string{"result"},
		Defaults: stringDefaults,
		Same:     sameKeepersOrOverride,
		Validate: validateString,
		Generate: func(plan resource.PropertyMap) (string, resource.PropertyMap, error) {
			result, err := randomString(plan)
			if err != nil {
				return "", nil, err
			}
			outs := resource.PropertyMap{"result": resource.NewProperty(result)}
			if !password {
				return result, outs, nil // random_string's id is its result
			}
			b := []byte(result)
			if len(b) > 72 { // bcrypt reads at most 72 bytes; upstream hashes that prefix
				b = b[:72]
			}
			hash, err := bcrypt.GenerateFromPassword(b, bcrypt.DefaultCost)
			outs["bcryptHash"] = resource.NewProperty(string(hash))
			return "none", outs, err
		},
	}
	if password {
		r.Sensitive = []string{"result", "bcryptHash"}
		r.Computed = append(r.Computed, "bcryptHash")
	}
	return r
}

func stringDefaults(plan resource.PropertyMap) {
	for _, k := range []string{"upper", "lower", "special"} {
		standin.SetDefault(plan, k, t)
	}
	for _, k := range []string{"minUpper", "minLower", "minNumeric", "minSpecial"} {
		standin.SetDefault(plan, k, zero)
	}
	// number is the deprecated twin of numeric: an unset one follows the other, both default to true.
	switch {
	case !standin.Set(plan, "number") && !standin.Set(plan, "numeric"):
		plan["number"], plan["numeric"] = t, t
	case !standin.Set(plan, "number"):
		plan["number"] = plan["numeric"]
	case !standin.Set(plan, "numeric"):
		plan["numeric"] = plan["number"]
	}
}

// sameKeepersOrOverride mirrors two plan modifiers: keepers entries with null values do not count
// (RequiresReplaceIfValuesNotNull), and overrideSpecial going from "" to null is no change.
func sameKeepersOrOverride(key string, old, new resource.PropertyValue) bool {
	switch key {
	case "keepers":
		return nonNull(old).DeepEquals(nonNull(new))
	case "overrideSpecial":
		return old.IsString() && old.StringValue() == "" && new.IsNull()
	}
	return false
}

func nonNull(v resource.PropertyValue) resource.PropertyValue {
	m := resource.PropertyMap{}
	if v.IsObject() {
		for k, e := range v.ObjectValue() {
			if !e.IsNull() {
				m[k] = e
			}
		}
	}
	return resource.NewProperty(m)
}

func validateString(plan resource.PropertyMap) []*pulumirpc.CheckFailure {
	var f []*pulumirpc.CheckFailure
	length := standin.Int(plan, "length")
	mins := standin.Int(plan, "minUpper") + standin.Int(plan, "minLower") + standin.Int(plan, "minNumeric") + standin.Int(plan, "minSpecial")
	if length < 1 || length < mins {
		f = append(f, &pulumirpc.CheckFailure{Property: "length",
			Reason: "length must be at least 1 and at least minUpper + minLower + minNumeric + minSpecial"})
	}
	if !standin.Bool(plan, "upper") && !standin.Bool(plan, "lower") && !standin.Bool(plan, "numeric") && !standin.Bool(plan, "special") {
		f = append(f, &pulumirpc.CheckFailure{Property: "numeric", Reason: "at least one of upper, lower, numeric and special must be true"})
	}
	if standin.Bool(plan, "number") != standin.Bool(plan, "numeric") {
		f = append(f, &pulumirpc.CheckFailure{Property: "numeric", Reason: "number and numeric are both configured with different values"})
	}
	return f
}

// randomString draws the minimum counts from each class (upstream does so even for a class that is
// turned off), fills up to length from the enabled classes, then shuffles, all from crypto/rand.
func randomString(plan resource.PropertyMap) (string, error) {
	special := defaultSpecial
	if s := standin.Str(plan, "overrideSpecial"); s != "" {
		special = s
	}
	classes := []struct {
		on    bool
		chars string
		min   int64
	}{
		{standin.Bool(plan, "upper"), upperChars, standin.Int(plan, "minUpper")},
		{standin.Bool(plan, "lower"), lowerChars, standin.Int(plan, "minLower")},
		{standin.Bool(plan, "numeric"), numericChars, standin.Int(plan, "minNumeric")},
		{standin.Bool(plan, "special"), special, standin.Int(plan, "minSpecial")},
	}
	var pool, out []rune
	for _, c := range classes {
		if c.on {
			pool = append(pool, []rune(c.chars)...)
		}
		out = append(out, pick([]rune(c.chars), c.min)...)
	}
	if len(pool) == 0 {
		return "", errors.New("the character set specified is empty")
	}
	out = append(out, pick(pool, standin.Int(plan, "length")-int64(len(out)))...)
	for i := len(out) - 1; i > 0; i-- {
		j := randInt(i + 1)
		out[i], out[j] = out[j], out[i]
	}
	return string(out), nil
}

func pick(set []rune, n int64) []rune {
	var out []rune
	for ; n > 0; n-- {
		out = append(out, set[randInt(len(set))])
	}
	return out
}

func randInt(n int) int {
	i, err := rand.Int(rand.Reader, big.NewInt(int64(n)))
	if err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return int(i.Int64())
}

// bytesResource is random_bytes: base64 and hex are secret; the bridge uses base64 as the id.
func bytesResource() *standin.TF {
	return &standin.TF{
		Inputs:    []string{"keepers", "length"},
		Required:  []string{"length"},
		Sensitive: []string{"base64", "hex"},
		Computed:  []string{"base64", "hex"},
		Validate: func(plan resource.PropertyMap) []*pulumirpc.CheckFailure {
			if standin.Int(plan, "length") < 1 {
				return []*pulumirpc.CheckFailure{{Property: "length", Reason: "length must be at least 1"}}
			}
			return nil
		},
		Generate: func(plan resource.PropertyMap) (string, resource.PropertyMap, error) {
			b := make([]byte, standin.Int(plan, "length"))
			if _, err := rand.Read(b); err != nil {
				return "", nil, err
			}
			b64 := base64.StdEncoding.EncodeToString(b)
			return b64, resource.PropertyMap{"base64": resource.NewProperty(b64), "hex": resource.NewProperty(hex.EncodeToString(b))}, nil
		},
	}
}
