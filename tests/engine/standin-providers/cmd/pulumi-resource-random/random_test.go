package main

import (
	"encoding/base64"
	"encoding/hex"
	"slices"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"golang.org/x/crypto/bcrypt"

	"dare.local/standin-providers/internal/standin"
)

func props(kv map[string]any) resource.PropertyMap { return resource.NewPropertyMapFromMap(kv) }

func create(t *testing.T, r *standin.TF, in map[string]any) (string, resource.PropertyMap) {
	t.Helper()
	checked, failures := r.Check(nil, props(in))
	if len(failures) > 0 {
		t.Fatalf("check failures: %v", failures)
	}
	id, outs, err := r.Create(standin.Call{}, checked)
	if err != nil {
		t.Fatal(err)
	}
	return id, outs
}

func only(s, allowed string) bool {
	return strings.IndexFunc(s, func(r rune) bool { return !strings.ContainsRune(allowed, r) }) < 0
}

func TestRandomStringAsTheProgramUsesIt(t *testing.T) {
	for i := 0; i < 50; i++ {
		id, outs := create(t, stringResource(false), map[string]any{"length": 16, "upper": false, "special": false})
		result := standin.Str(outs, "result")
		if len(result) != 16 || !only(result, lowerChars+numericChars) || id != result || outs["result"].IsSecret() {
			t.Fatalf("id %q result %q", id, result)
		}
		if !standin.Bool(outs, "lower") || !standin.Bool(outs, "numeric") || !standin.Bool(outs, "number") || standin.Int(outs, "minUpper") != 0 {
			t.Fatalf("defaults missing from outputs: %v", outs)
		}
	}
}

func TestMinimumsAndOverrideSpecial(t *testing.T) {
	for i := 0; i < 50; i++ {
		_, outs := create(t, stringResource(false), map[string]any{"length": 8, "upper": false, "lower": false, "numeric": false,
			"minUpper": 3, "minNumeric": 2, "overrideSpecial": "_-"})
		r := standin.Str(outs, "result")
		count := func(set string) int {
			return len(strings.Map(func(c rune) rune { return map[bool]rune{true: c, false: -1}[strings.ContainsRune(set, c)] }, r))
		}
		// Minimums are drawn even from classes that are turned off; the rest only from "_-".
		if len(r) != 8 || count(upperChars) != 3 || count(numericChars) != 2 || count("_-") != 3 {
			t.Fatalf("result %q", r)
		}
	}
}

func TestStringValidation(t *testing.T) {
	r := stringResource(false)
	for _, in := range []map[string]any{
		{"length": 0},
		{"length": 3, "minUpper": 2, "minLower": 2},
		{"length": 3, "number": true, "numeric": false},
		{"length": 3, "upper": false, "lower": false, "numeric": false, "special": false},
	} {
		if _, f := r.Check(nil, props(in)); len(f) == 0 {
			t.Errorf("%v passed", in)
		}
	}
	if _, f := r.Check(nil, resource.PropertyMap{"length": standin.Unknown()}); len(f) != 0 {
		t.Errorf("unknown length failed: %v", f)
	}
	plan := props(map[string]any{"length": 4, "upper": false, "lower": false, "numeric": false, "special": false})
	if _, _, err := r.Create(standin.Call{}, plan); err == nil || !strings.Contains(err.Error(), "character set specified is empty") {
		t.Errorf("empty charset: %v", err)
	}
}

func TestRandomPasswordIsSecretWithBcrypt(t *testing.T) {
	id, outs := create(t, stringResource(true), map[string]any{"length": 32, "special": false})
	result := standin.Str(outs, "result")
	if id != "none" || !outs["result"].IsSecret() || !outs["bcryptHash"].IsSecret() || len(result) != 32 || !only(result, upperChars+lowerChars+numericChars) {
		t.Fatalf("id %q outs %v", id, outs)
	}
	if bcrypt.CompareHashAndPassword([]byte(standin.Str(outs, "bcryptHash")), []byte(result)) != nil {
		t.Fatal("bcryptHash does not match result")
	}
	_, preview, _ := stringResource(true).Create(standin.Call{Preview: true}, props(map[string]any{"length": 32}))
	if !preview["result"].ContainsUnknowns() || !preview["bcryptHash"].ContainsUnknowns() || !standin.Bool(preview, "upper") {
		t.Fatalf("preview %v", preview)
	}
}

func TestRandomBytes(t *testing.T) {
	id, outs := create(t, bytesResource(), map[string]any{"length": 32})
	raw, err := base64.StdEncoding.DecodeString(standin.Str(outs, "base64"))
	if err != nil || len(raw) != 32 || hex.EncodeToString(raw) != standin.Str(outs, "hex") || id != standin.Str(outs, "base64") ||
		!outs["base64"].IsSecret() || !outs["hex"].IsSecret() {
		t.Fatalf("id %q outs %v", id, outs)
	}
}

func TestStringDiff(t *testing.T) {
	r := stringResource(false)
	_, state := create(t, r, map[string]any{"length": 6, "upper": false, "special": false, "keepers": map[string]any{"k": "1"}, "overrideSpecial": ""})
	cases := []struct {
		in       map[string]any
		replaces []string
	}{
		{map[string]any{"length": 6, "upper": false, "special": false, "keepers": map[string]any{"k": "1"}, "lower": true}, nil},
		{map[string]any{"length": 6, "upper": false, "special": false, "keepers": map[string]any{"k": "1", "n": nil}}, nil},
		{map[string]any{"length": 6, "upper": false, "special": false, "keepers": map[string]any{"k": "2"}}, []string{"keepers"}},
		{map[string]any{"length": 7, "upper": false, "special": false, "keepers": map[string]any{"k": "1"}}, []string{"length"}},
		{map[string]any{"length": 6, "special": false, "keepers": map[string]any{"k": "1"}}, []string{"upper"}},
		{map[string]any{"length": 6, "upper": false, "special": false, "keepers": map[string]any{"k": "1"}, "numeric": false}, []string{"number", "numeric"}},
	}
	for _, c := range cases {
		d, _ := r.Diff(standin.Call{}, state, nil, props(c.in))
		resp := standin.DiffResponse(d)
		slices.Sort(resp.Replaces)
		if !slices.Equal(resp.Replaces, c.replaces) || len(resp.Diffs) != len(c.replaces) {
			t.Errorf("%v: replaces %v diffs %v", c.in, resp.Replaces, resp.Diffs)
		}
	}
}
