/*
 * gojson.c — Go encoding/json's scanner states, re-expressed as one loop over
 * the bytes with an explicit stack of open containers, so that kvgate's
 * syntax errors carry the same words and the same offending character as
 * etcd's.  See gojson.h.
 */
#include "gojson.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 10000

enum state {
    S_BEGIN_VALUE,          /* expecting a value */
    S_BEGIN_VALUE_OR_EMPTY, /* after '[' */
    S_BEGIN_KEY_OR_EMPTY,   /* after '{' */
    S_BEGIN_KEY,            /* after ',' in an object */
    S_END_VALUE,            /* a value ended; look at the container */
    S_IN_STRING, S_IN_STRING_ESC, S_IN_STRING_ESC_U,
    S_NEG, S_0, S_1, S_DOT, S_DOT0, S_E, S_E_SIGN, S_E0,
    S_LITERAL,              /* true/false/null, expecting lit[li] */
};

/* What the string / value being scanned is inside. */
enum frame { F_OBJ_KEY, F_OBJ_VALUE, F_ARRAY };

char *gojson_quote_char(unsigned char c, char *out)
{
    if (c == '\'') {
        strcpy(out, "'\\''");
        return out;
    }
    if (c == '"') {
        strcpy(out, "'\"'");
        return out;
    }
    /* strconv.Quote(string(rune(c))) without its double quotes. */
    switch (c) {
    case '\a': strcpy(out, "'\\a'"); return out;
    case '\b': strcpy(out, "'\\b'"); return out;
    case '\f': strcpy(out, "'\\f'"); return out;
    case '\n': strcpy(out, "'\\n'"); return out;
    case '\r': strcpy(out, "'\\r'"); return out;
    case '\t': strcpy(out, "'\\t'"); return out;
    case '\v': strcpy(out, "'\\v'"); return out;
    case '\\': strcpy(out, "'\\\\'"); return out;
    default: break;
    }
    if (c < 0x20 || c == 0x7f) {
        snprintf(out, 16, "'\\x%02x'", c);
    } else if (c < 0x80) {
        out[0] = '\'';
        out[1] = (char)c;
        out[2] = '\'';
        out[3] = 0;
    } else if (c < 0xa1 || c == 0xad) {
        /* U+0080..U+00A0 and the soft hyphen are not printable in Go. */
        snprintf(out, 16, "'\\u%04x'", c);
    } else {
        /* Latin-1 rune, printed as its UTF-8 encoding. */
        out[0] = '\'';
        out[1] = (char)(0xc0 | (c >> 6));
        out[2] = (char)(0x80 | (c & 0x3f));
        out[3] = '\'';
        out[4] = 0;
    }
    return out;
}

/* Printable code points for Go 1.19's unicode.IsPrint (Unicode 13.0.0):
 * inclusive ranges, sorted.  Generated from the Unicode character
 * database: categories L, M, N, P, S and U+0020, minus what Unicode 14
 * added. */
static const struct {
    uint32_t lo, hi;
} print_ranges[] = {
    {0x20, 0x7e}, {0xa1, 0xac}, {0xae, 0x377}, {0x37a, 0x37f}, {0x384, 0x38a},
    {0x38c, 0x38c}, {0x38e, 0x3a1}, {0x3a3, 0x52f}, {0x531, 0x556}, {0x559, 0x58a},
    {0x58d, 0x58f}, {0x591, 0x5c7}, {0x5d0, 0x5ea}, {0x5ef, 0x5f4}, {0x606, 0x61b},
    {0x61e, 0x6dc}, {0x6de, 0x70d}, {0x710, 0x74a}, {0x74d, 0x7b1}, {0x7c0, 0x7fa},
    {0x7fd, 0x82d}, {0x830, 0x83e}, {0x840, 0x85b}, {0x85e, 0x85e}, {0x860, 0x86a},
    {0x8a0, 0x8b4}, {0x8b6, 0x8c7}, {0x8d3, 0x8e1}, {0x8e3, 0x983}, {0x985, 0x98c},
    {0x98f, 0x990}, {0x993, 0x9a8}, {0x9aa, 0x9b0}, {0x9b2, 0x9b2}, {0x9b6, 0x9b9},
    {0x9bc, 0x9c4}, {0x9c7, 0x9c8}, {0x9cb, 0x9ce}, {0x9d7, 0x9d7}, {0x9dc, 0x9dd},
    {0x9df, 0x9e3}, {0x9e6, 0x9fe}, {0xa01, 0xa03}, {0xa05, 0xa0a}, {0xa0f, 0xa10},
    {0xa13, 0xa28}, {0xa2a, 0xa30}, {0xa32, 0xa33}, {0xa35, 0xa36}, {0xa38, 0xa39},
    {0xa3c, 0xa3c}, {0xa3e, 0xa42}, {0xa47, 0xa48}, {0xa4b, 0xa4d}, {0xa51, 0xa51},
    {0xa59, 0xa5c}, {0xa5e, 0xa5e}, {0xa66, 0xa76}, {0xa81, 0xa83}, {0xa85, 0xa8d},
    {0xa8f, 0xa91}, {0xa93, 0xaa8}, {0xaaa, 0xab0}, {0xab2, 0xab3}, {0xab5, 0xab9},
    {0xabc, 0xac5}, {0xac7, 0xac9}, {0xacb, 0xacd}, {0xad0, 0xad0}, {0xae0, 0xae3},
    {0xae6, 0xaf1}, {0xaf9, 0xaff}, {0xb01, 0xb03}, {0xb05, 0xb0c}, {0xb0f, 0xb10},
    {0xb13, 0xb28}, {0xb2a, 0xb30}, {0xb32, 0xb33}, {0xb35, 0xb39}, {0xb3c, 0xb44},
    {0xb47, 0xb48}, {0xb4b, 0xb4d}, {0xb55, 0xb57}, {0xb5c, 0xb5d}, {0xb5f, 0xb63},
    {0xb66, 0xb77}, {0xb82, 0xb83}, {0xb85, 0xb8a}, {0xb8e, 0xb90}, {0xb92, 0xb95},
    {0xb99, 0xb9a}, {0xb9c, 0xb9c}, {0xb9e, 0xb9f}, {0xba3, 0xba4}, {0xba8, 0xbaa},
    {0xbae, 0xbb9}, {0xbbe, 0xbc2}, {0xbc6, 0xbc8}, {0xbca, 0xbcd}, {0xbd0, 0xbd0},
    {0xbd7, 0xbd7}, {0xbe6, 0xbfa}, {0xc00, 0xc0c}, {0xc0e, 0xc10}, {0xc12, 0xc28},
    {0xc2a, 0xc39}, {0xc3d, 0xc44}, {0xc46, 0xc48}, {0xc4a, 0xc4d}, {0xc55, 0xc56},
    {0xc58, 0xc5a}, {0xc60, 0xc63}, {0xc66, 0xc6f}, {0xc77, 0xc8c}, {0xc8e, 0xc90},
    {0xc92, 0xca8}, {0xcaa, 0xcb3}, {0xcb5, 0xcb9}, {0xcbc, 0xcc4}, {0xcc6, 0xcc8},
    {0xcca, 0xccd}, {0xcd5, 0xcd6}, {0xcde, 0xcde}, {0xce0, 0xce3}, {0xce6, 0xcef},
    {0xcf1, 0xcf2}, {0xd00, 0xd0c}, {0xd0e, 0xd10}, {0xd12, 0xd44}, {0xd46, 0xd48},
    {0xd4a, 0xd4f}, {0xd54, 0xd63}, {0xd66, 0xd7f}, {0xd81, 0xd83}, {0xd85, 0xd96},
    {0xd9a, 0xdb1}, {0xdb3, 0xdbb}, {0xdbd, 0xdbd}, {0xdc0, 0xdc6}, {0xdca, 0xdca},
    {0xdcf, 0xdd4}, {0xdd6, 0xdd6}, {0xdd8, 0xddf}, {0xde6, 0xdef}, {0xdf2, 0xdf4},
    {0xe01, 0xe3a}, {0xe3f, 0xe5b}, {0xe81, 0xe82}, {0xe84, 0xe84}, {0xe86, 0xe8a},
    {0xe8c, 0xea3}, {0xea5, 0xea5}, {0xea7, 0xebd}, {0xec0, 0xec4}, {0xec6, 0xec6},
    {0xec8, 0xecd}, {0xed0, 0xed9}, {0xedc, 0xedf}, {0xf00, 0xf47}, {0xf49, 0xf6c},
    {0xf71, 0xf97}, {0xf99, 0xfbc}, {0xfbe, 0xfcc}, {0xfce, 0xfda}, {0x1000, 0x10c5},
    {0x10c7, 0x10c7}, {0x10cd, 0x10cd}, {0x10d0, 0x1248}, {0x124a, 0x124d}, {0x1250, 0x1256},
    {0x1258, 0x1258}, {0x125a, 0x125d}, {0x1260, 0x1288}, {0x128a, 0x128d}, {0x1290, 0x12b0},
    {0x12b2, 0x12b5}, {0x12b8, 0x12be}, {0x12c0, 0x12c0}, {0x12c2, 0x12c5}, {0x12c8, 0x12d6},
    {0x12d8, 0x1310}, {0x1312, 0x1315}, {0x1318, 0x135a}, {0x135d, 0x137c}, {0x1380, 0x1399},
    {0x13a0, 0x13f5}, {0x13f8, 0x13fd}, {0x1400, 0x167f}, {0x1681, 0x169c}, {0x16a0, 0x16f8},
    {0x1700, 0x170c}, {0x170e, 0x1714}, {0x1720, 0x1736}, {0x1740, 0x1753}, {0x1760, 0x176c},
    {0x176e, 0x1770}, {0x1772, 0x1773}, {0x1780, 0x17dd}, {0x17e0, 0x17e9}, {0x17f0, 0x17f9},
    {0x1800, 0x180d}, {0x1810, 0x1819}, {0x1820, 0x1878}, {0x1880, 0x18aa}, {0x18b0, 0x18f5},
    {0x1900, 0x191e}, {0x1920, 0x192b}, {0x1930, 0x193b}, {0x1940, 0x1940}, {0x1944, 0x196d},
    {0x1970, 0x1974}, {0x1980, 0x19ab}, {0x19b0, 0x19c9}, {0x19d0, 0x19da}, {0x19de, 0x1a1b},
    {0x1a1e, 0x1a5e}, {0x1a60, 0x1a7c}, {0x1a7f, 0x1a89}, {0x1a90, 0x1a99}, {0x1aa0, 0x1aad},
    {0x1ab0, 0x1ac0}, {0x1b00, 0x1b4b}, {0x1b50, 0x1b7c}, {0x1b80, 0x1bf3}, {0x1bfc, 0x1c37},
    {0x1c3b, 0x1c49}, {0x1c4d, 0x1c88}, {0x1c90, 0x1cba}, {0x1cbd, 0x1cc7}, {0x1cd0, 0x1cfa},
    {0x1d00, 0x1df9}, {0x1dfb, 0x1f15}, {0x1f18, 0x1f1d}, {0x1f20, 0x1f45}, {0x1f48, 0x1f4d},
    {0x1f50, 0x1f57}, {0x1f59, 0x1f59}, {0x1f5b, 0x1f5b}, {0x1f5d, 0x1f5d}, {0x1f5f, 0x1f7d},
    {0x1f80, 0x1fb4}, {0x1fb6, 0x1fc4}, {0x1fc6, 0x1fd3}, {0x1fd6, 0x1fdb}, {0x1fdd, 0x1fef},
    {0x1ff2, 0x1ff4}, {0x1ff6, 0x1ffe}, {0x2010, 0x2027}, {0x2030, 0x205e}, {0x2070, 0x2071},
    {0x2074, 0x208e}, {0x2090, 0x209c}, {0x20a0, 0x20bf}, {0x20d0, 0x20f0}, {0x2100, 0x218b},
    {0x2190, 0x2426}, {0x2440, 0x244a}, {0x2460, 0x2b73}, {0x2b76, 0x2b95}, {0x2b97, 0x2c2e},
    {0x2c30, 0x2c5e}, {0x2c60, 0x2cf3}, {0x2cf9, 0x2d25}, {0x2d27, 0x2d27}, {0x2d2d, 0x2d2d},
    {0x2d30, 0x2d67}, {0x2d6f, 0x2d70}, {0x2d7f, 0x2d96}, {0x2da0, 0x2da6}, {0x2da8, 0x2dae},
    {0x2db0, 0x2db6}, {0x2db8, 0x2dbe}, {0x2dc0, 0x2dc6}, {0x2dc8, 0x2dce}, {0x2dd0, 0x2dd6},
    {0x2dd8, 0x2dde}, {0x2de0, 0x2e52}, {0x2e80, 0x2e99}, {0x2e9b, 0x2ef3}, {0x2f00, 0x2fd5},
    {0x2ff0, 0x2ffb}, {0x3001, 0x303f}, {0x3041, 0x3096}, {0x3099, 0x30ff}, {0x3105, 0x312f},
    {0x3131, 0x318e}, {0x3190, 0x31e3}, {0x31f0, 0x321e}, {0x3220, 0x9ffc}, {0xa000, 0xa48c},
    {0xa490, 0xa4c6}, {0xa4d0, 0xa62b}, {0xa640, 0xa6f7}, {0xa700, 0xa7bf}, {0xa7c2, 0xa7ca},
    {0xa7f5, 0xa82c}, {0xa830, 0xa839}, {0xa840, 0xa877}, {0xa880, 0xa8c5}, {0xa8ce, 0xa8d9},
    {0xa8e0, 0xa953}, {0xa95f, 0xa97c}, {0xa980, 0xa9cd}, {0xa9cf, 0xa9d9}, {0xa9de, 0xa9fe},
    {0xaa00, 0xaa36}, {0xaa40, 0xaa4d}, {0xaa50, 0xaa59}, {0xaa5c, 0xaac2}, {0xaadb, 0xaaf6},
    {0xab01, 0xab06}, {0xab09, 0xab0e}, {0xab11, 0xab16}, {0xab20, 0xab26}, {0xab28, 0xab2e},
    {0xab30, 0xab6b}, {0xab70, 0xabed}, {0xabf0, 0xabf9}, {0xac00, 0xd7a3}, {0xd7b0, 0xd7c6},
    {0xd7cb, 0xd7fb}, {0xf900, 0xfa6d}, {0xfa70, 0xfad9}, {0xfb00, 0xfb06}, {0xfb13, 0xfb17},
    {0xfb1d, 0xfb36}, {0xfb38, 0xfb3c}, {0xfb3e, 0xfb3e}, {0xfb40, 0xfb41}, {0xfb43, 0xfb44},
    {0xfb46, 0xfbc1}, {0xfbd3, 0xfd3f}, {0xfd50, 0xfd8f}, {0xfd92, 0xfdc7}, {0xfdf0, 0xfdfd},
    {0xfe00, 0xfe19}, {0xfe20, 0xfe52}, {0xfe54, 0xfe66}, {0xfe68, 0xfe6b}, {0xfe70, 0xfe74},
    {0xfe76, 0xfefc}, {0xff01, 0xffbe}, {0xffc2, 0xffc7}, {0xffca, 0xffcf}, {0xffd2, 0xffd7},
    {0xffda, 0xffdc}, {0xffe0, 0xffe6}, {0xffe8, 0xffee}, {0xfffc, 0xfffd}, {0x10000, 0x1000b},
    {0x1000d, 0x10026}, {0x10028, 0x1003a}, {0x1003c, 0x1003d}, {0x1003f, 0x1004d}, {0x10050, 0x1005d},
    {0x10080, 0x100fa}, {0x10100, 0x10102}, {0x10107, 0x10133}, {0x10137, 0x1018e}, {0x10190, 0x1019c},
    {0x101a0, 0x101a0}, {0x101d0, 0x101fd}, {0x10280, 0x1029c}, {0x102a0, 0x102d0}, {0x102e0, 0x102fb},
    {0x10300, 0x10323}, {0x1032d, 0x1034a}, {0x10350, 0x1037a}, {0x10380, 0x1039d}, {0x1039f, 0x103c3},
    {0x103c8, 0x103d5}, {0x10400, 0x1049d}, {0x104a0, 0x104a9}, {0x104b0, 0x104d3}, {0x104d8, 0x104fb},
    {0x10500, 0x10527}, {0x10530, 0x10563}, {0x1056f, 0x1056f}, {0x10600, 0x10736}, {0x10740, 0x10755},
    {0x10760, 0x10767}, {0x10800, 0x10805}, {0x10808, 0x10808}, {0x1080a, 0x10835}, {0x10837, 0x10838},
    {0x1083c, 0x1083c}, {0x1083f, 0x10855}, {0x10857, 0x1089e}, {0x108a7, 0x108af}, {0x108e0, 0x108f2},
    {0x108f4, 0x108f5}, {0x108fb, 0x1091b}, {0x1091f, 0x10939}, {0x1093f, 0x1093f}, {0x10980, 0x109b7},
    {0x109bc, 0x109cf}, {0x109d2, 0x10a03}, {0x10a05, 0x10a06}, {0x10a0c, 0x10a13}, {0x10a15, 0x10a17},
    {0x10a19, 0x10a35}, {0x10a38, 0x10a3a}, {0x10a3f, 0x10a48}, {0x10a50, 0x10a58}, {0x10a60, 0x10a9f},
    {0x10ac0, 0x10ae6}, {0x10aeb, 0x10af6}, {0x10b00, 0x10b35}, {0x10b39, 0x10b55}, {0x10b58, 0x10b72},
    {0x10b78, 0x10b91}, {0x10b99, 0x10b9c}, {0x10ba9, 0x10baf}, {0x10c00, 0x10c48}, {0x10c80, 0x10cb2},
    {0x10cc0, 0x10cf2}, {0x10cfa, 0x10d27}, {0x10d30, 0x10d39}, {0x10e60, 0x10e7e}, {0x10e80, 0x10ea9},
    {0x10eab, 0x10ead}, {0x10eb0, 0x10eb1}, {0x10f00, 0x10f27}, {0x10f30, 0x10f59}, {0x10fb0, 0x10fcb},
    {0x10fe0, 0x10ff6}, {0x11000, 0x1104d}, {0x11052, 0x1106f}, {0x1107f, 0x110bc}, {0x110be, 0x110c1},
    {0x110d0, 0x110e8}, {0x110f0, 0x110f9}, {0x11100, 0x11134}, {0x11136, 0x11147}, {0x11150, 0x11176},
    {0x11180, 0x111df}, {0x111e1, 0x111f4}, {0x11200, 0x11211}, {0x11213, 0x1123e}, {0x11280, 0x11286},
    {0x11288, 0x11288}, {0x1128a, 0x1128d}, {0x1128f, 0x1129d}, {0x1129f, 0x112a9}, {0x112b0, 0x112ea},
    {0x112f0, 0x112f9}, {0x11300, 0x11303}, {0x11305, 0x1130c}, {0x1130f, 0x11310}, {0x11313, 0x11328},
    {0x1132a, 0x11330}, {0x11332, 0x11333}, {0x11335, 0x11339}, {0x1133b, 0x11344}, {0x11347, 0x11348},
    {0x1134b, 0x1134d}, {0x11350, 0x11350}, {0x11357, 0x11357}, {0x1135d, 0x11363}, {0x11366, 0x1136c},
    {0x11370, 0x11374}, {0x11400, 0x1145b}, {0x1145d, 0x11461}, {0x11480, 0x114c7}, {0x114d0, 0x114d9},
    {0x11580, 0x115b5}, {0x115b8, 0x115dd}, {0x11600, 0x11644}, {0x11650, 0x11659}, {0x11660, 0x1166c},
    {0x11680, 0x116b8}, {0x116c0, 0x116c9}, {0x11700, 0x1171a}, {0x1171d, 0x1172b}, {0x11730, 0x1173f},
    {0x11800, 0x1183b}, {0x118a0, 0x118f2}, {0x118ff, 0x11906}, {0x11909, 0x11909}, {0x1190c, 0x11913},
    {0x11915, 0x11916}, {0x11918, 0x11935}, {0x11937, 0x11938}, {0x1193b, 0x11946}, {0x11950, 0x11959},
    {0x119a0, 0x119a7}, {0x119aa, 0x119d7}, {0x119da, 0x119e4}, {0x11a00, 0x11a47}, {0x11a50, 0x11aa2},
    {0x11ac0, 0x11af8}, {0x11c00, 0x11c08}, {0x11c0a, 0x11c36}, {0x11c38, 0x11c45}, {0x11c50, 0x11c6c},
    {0x11c70, 0x11c8f}, {0x11c92, 0x11ca7}, {0x11ca9, 0x11cb6}, {0x11d00, 0x11d06}, {0x11d08, 0x11d09},
    {0x11d0b, 0x11d36}, {0x11d3a, 0x11d3a}, {0x11d3c, 0x11d3d}, {0x11d3f, 0x11d47}, {0x11d50, 0x11d59},
    {0x11d60, 0x11d65}, {0x11d67, 0x11d68}, {0x11d6a, 0x11d8e}, {0x11d90, 0x11d91}, {0x11d93, 0x11d98},
    {0x11da0, 0x11da9}, {0x11ee0, 0x11ef8}, {0x11fb0, 0x11fb0}, {0x11fc0, 0x11ff1}, {0x11fff, 0x12399},
    {0x12400, 0x1246e}, {0x12470, 0x12474}, {0x12480, 0x12543}, {0x13000, 0x1342e}, {0x14400, 0x14646},
    {0x16800, 0x16a38}, {0x16a40, 0x16a5e}, {0x16a60, 0x16a69}, {0x16a6e, 0x16a6f}, {0x16ad0, 0x16aed},
    {0x16af0, 0x16af5}, {0x16b00, 0x16b45}, {0x16b50, 0x16b59}, {0x16b5b, 0x16b61}, {0x16b63, 0x16b77},
    {0x16b7d, 0x16b8f}, {0x16e40, 0x16e9a}, {0x16f00, 0x16f4a}, {0x16f4f, 0x16f87}, {0x16f8f, 0x16f9f},
    {0x16fe0, 0x16fe4}, {0x16ff0, 0x16ff1}, {0x17000, 0x187f7}, {0x18800, 0x18cd5}, {0x18d00, 0x18d08},
    {0x1b000, 0x1b11e}, {0x1b150, 0x1b152}, {0x1b164, 0x1b167}, {0x1b170, 0x1b2fb}, {0x1bc00, 0x1bc6a},
    {0x1bc70, 0x1bc7c}, {0x1bc80, 0x1bc88}, {0x1bc90, 0x1bc99}, {0x1bc9c, 0x1bc9f}, {0x1d000, 0x1d0f5},
    {0x1d100, 0x1d126}, {0x1d129, 0x1d172}, {0x1d17b, 0x1d1e8}, {0x1d200, 0x1d245}, {0x1d2e0, 0x1d2f3},
    {0x1d300, 0x1d356}, {0x1d360, 0x1d378}, {0x1d400, 0x1d454}, {0x1d456, 0x1d49c}, {0x1d49e, 0x1d49f},
    {0x1d4a2, 0x1d4a2}, {0x1d4a5, 0x1d4a6}, {0x1d4a9, 0x1d4ac}, {0x1d4ae, 0x1d4b9}, {0x1d4bb, 0x1d4bb},
    {0x1d4bd, 0x1d4c3}, {0x1d4c5, 0x1d505}, {0x1d507, 0x1d50a}, {0x1d50d, 0x1d514}, {0x1d516, 0x1d51c},
    {0x1d51e, 0x1d539}, {0x1d53b, 0x1d53e}, {0x1d540, 0x1d544}, {0x1d546, 0x1d546}, {0x1d54a, 0x1d550},
    {0x1d552, 0x1d6a5}, {0x1d6a8, 0x1d7cb}, {0x1d7ce, 0x1da8b}, {0x1da9b, 0x1da9f}, {0x1daa1, 0x1daaf},
    {0x1e000, 0x1e006}, {0x1e008, 0x1e018}, {0x1e01b, 0x1e021}, {0x1e023, 0x1e024}, {0x1e026, 0x1e02a},
    {0x1e100, 0x1e12c}, {0x1e130, 0x1e13d}, {0x1e140, 0x1e149}, {0x1e14e, 0x1e14f}, {0x1e2c0, 0x1e2f9},
    {0x1e2ff, 0x1e2ff}, {0x1e800, 0x1e8c4}, {0x1e8c7, 0x1e8d6}, {0x1e900, 0x1e94b}, {0x1e950, 0x1e959},
    {0x1e95e, 0x1e95f}, {0x1ec71, 0x1ecb4}, {0x1ed01, 0x1ed3d}, {0x1ee00, 0x1ee03}, {0x1ee05, 0x1ee1f},
    {0x1ee21, 0x1ee22}, {0x1ee24, 0x1ee24}, {0x1ee27, 0x1ee27}, {0x1ee29, 0x1ee32}, {0x1ee34, 0x1ee37},
    {0x1ee39, 0x1ee39}, {0x1ee3b, 0x1ee3b}, {0x1ee42, 0x1ee42}, {0x1ee47, 0x1ee47}, {0x1ee49, 0x1ee49},
    {0x1ee4b, 0x1ee4b}, {0x1ee4d, 0x1ee4f}, {0x1ee51, 0x1ee52}, {0x1ee54, 0x1ee54}, {0x1ee57, 0x1ee57},
    {0x1ee59, 0x1ee59}, {0x1ee5b, 0x1ee5b}, {0x1ee5d, 0x1ee5d}, {0x1ee5f, 0x1ee5f}, {0x1ee61, 0x1ee62},
    {0x1ee64, 0x1ee64}, {0x1ee67, 0x1ee6a}, {0x1ee6c, 0x1ee72}, {0x1ee74, 0x1ee77}, {0x1ee79, 0x1ee7c},
    {0x1ee7e, 0x1ee7e}, {0x1ee80, 0x1ee89}, {0x1ee8b, 0x1ee9b}, {0x1eea1, 0x1eea3}, {0x1eea5, 0x1eea9},
    {0x1eeab, 0x1eebb}, {0x1eef0, 0x1eef1}, {0x1f000, 0x1f02b}, {0x1f030, 0x1f093}, {0x1f0a0, 0x1f0ae},
    {0x1f0b1, 0x1f0bf}, {0x1f0c1, 0x1f0cf}, {0x1f0d1, 0x1f0f5}, {0x1f100, 0x1f1ad}, {0x1f1e6, 0x1f202},
    {0x1f210, 0x1f23b}, {0x1f240, 0x1f248}, {0x1f250, 0x1f251}, {0x1f260, 0x1f265}, {0x1f300, 0x1f6d7},
    {0x1f6e0, 0x1f6ec}, {0x1f6f0, 0x1f6fc}, {0x1f700, 0x1f773}, {0x1f780, 0x1f7d8}, {0x1f7e0, 0x1f7eb},
    {0x1f800, 0x1f80b}, {0x1f810, 0x1f847}, {0x1f850, 0x1f859}, {0x1f860, 0x1f887}, {0x1f890, 0x1f8ad},
    {0x1f8b0, 0x1f8b1}, {0x1f900, 0x1f978}, {0x1f97a, 0x1f9cb}, {0x1f9cd, 0x1fa53}, {0x1fa60, 0x1fa6d},
    {0x1fa70, 0x1fa74}, {0x1fa78, 0x1fa7a}, {0x1fa80, 0x1fa86}, {0x1fa90, 0x1faa8}, {0x1fab0, 0x1fab6},
    {0x1fac0, 0x1fac2}, {0x1fad0, 0x1fad6}, {0x1fb00, 0x1fb92}, {0x1fb94, 0x1fbca}, {0x1fbf0, 0x1fbf9},
    {0x20000, 0x2a6dd}, {0x2a700, 0x2b734}, {0x2b740, 0x2b81d}, {0x2b820, 0x2cea1}, {0x2ceb0, 0x2ebe0},
    {0x2f800, 0x2fa1d}, {0x30000, 0x3134a}, {0xe0100, 0xe01ef},
};

int gojson_is_print(unsigned long r)
{
    size_t lo = 0, hi = sizeof print_ranges / sizeof print_ranges[0];
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (r < print_ranges[mid].lo)
            hi = mid;
        else if (r > print_ranges[mid].hi)
            lo = mid + 1;
        else
            return 1;
    }
    return 0;
}

size_t gojson_decode_rune(const unsigned char *p, size_t n, unsigned long *r)
{
    unsigned char c = p[0];
    size_t need;
    unsigned long cp, min;
    if (c < 0x80) {
        *r = c;
        return 1;
    }
    if (c >= 0xc2 && c <= 0xdf) {
        need = 2; cp = c & 0x1f; min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        need = 3; cp = c & 0x0f; min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        need = 4; cp = c & 0x07; min = 0x10000;
    } else {
        return 0;
    }
    if (n < need)
        return 0;
    for (size_t i = 1; i < need; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (p[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    *r = cp;
    return need;
}

size_t gojson_quote(const char *s, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    size_t o = 0;
    out[o++] = '"';
    for (size_t i = 0; i < n;) {
        unsigned long r;
        size_t w = gojson_decode_rune(p + i, n - i, &r);
        if (w == 0) {
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[p[i] >> 4];
            out[o++] = hex[p[i] & 15];
            i++;
            continue;
        }
        if (r == '"' || r == '\\') {
            out[o++] = '\\';
            out[o++] = (char)r;
        } else if (gojson_is_print(r)) {
            memcpy(out + o, p + i, w);
            o += w;
        } else {
            const char *e = NULL;
            switch (r) {
            case '\a': e = "\\a"; break;
            case '\b': e = "\\b"; break;
            case '\f': e = "\\f"; break;
            case '\n': e = "\\n"; break;
            case '\r': e = "\\r"; break;
            case '\t': e = "\\t"; break;
            case '\v': e = "\\v"; break;
            default: break;
            }
            if (e) {
                memcpy(out + o, e, 2);
                o += 2;
            } else if (r < ' ' || r == 0x7f) {
                o += (size_t)sprintf(out + o, "\\x%02lx", r);
            } else if (r < 0x10000) {
                o += (size_t)sprintf(out + o, "\\u%04lx", r);
            } else {
                o += (size_t)sprintf(out + o, "\\U%08lx", r);
            }
        }
        i += w;
    }
    out[o++] = '"';
    out[o] = 0;
    return o;
}

static int fail(gojson_scan *o, unsigned char c, const char *ctx)
{
    char q[16];
    snprintf(o->msg, sizeof o->msg, "invalid character %s %s", gojson_quote_char(c, q), ctx);
    return GOJSON_ERR;
}

static int is_space(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* Remembers a number literal that jansson cannot give back as an int64. */
static void note_number(gojson_scan *o, const char *buf, size_t start, size_t end, int is_int)
{
    if (is_int) {
        char tmp[32];
        size_t n = end - start;
        if (n < sizeof tmp) {
            memcpy(tmp, buf + start, n);
            tmp[n] = 0;
            errno = 0;
            (void)strtoll(tmp, NULL, 10);
            if (errno == 0)
                return;
        }
    }
    if (o->n_odd < GOJSON_MAX_ODD_NUMS) {
        o->odd[o->n_odd].off = start;
        o->odd[o->n_odd].len = end - start;
        o->n_odd++;
    }
}

int gojson_scan_value(const char *buf, size_t len, gojson_scan *o)
{
    static const char *const lit_ctx[] = {"true", "false", "null"};
    uint8_t stack[MAX_DEPTH + 1];
    size_t depth = 0, i = 0, num_start = 0, li = 0;
    int num_is_int = 1, hex_left = 0;
    const char *lit = NULL;
    enum state st = S_BEGIN_VALUE;

    o->n_odd = 0;
    o->msg[0] = 0;
    while (i < len && is_space((unsigned char)buf[i]))
        i++;
    if (i == len)
        return GOJSON_EMPTY;

    for (; i < len; i++) {
        unsigned char c = (unsigned char)buf[i];
    again:
        switch (st) {
        case S_BEGIN_VALUE_OR_EMPTY:
            if (is_space(c))
                continue;
            if (c == ']') {
                depth--;
                st = S_END_VALUE;
                goto end_value_check;
            }
            st = S_BEGIN_VALUE;
            /* fall through */
        case S_BEGIN_VALUE:
            if (is_space(c))
                continue;
            switch (c) {
            case '{':
                if (depth >= MAX_DEPTH) {
                    strcpy(o->msg, "exceeded max depth");
                    return GOJSON_ERR;
                }
                stack[depth++] = F_OBJ_KEY;
                st = S_BEGIN_KEY_OR_EMPTY;
                continue;
            case '[':
                if (depth >= MAX_DEPTH) {
                    strcpy(o->msg, "exceeded max depth");
                    return GOJSON_ERR;
                }
                stack[depth++] = F_ARRAY;
                st = S_BEGIN_VALUE_OR_EMPTY;
                continue;
            case '"':
                st = S_IN_STRING;
                continue;
            case '-':
                num_start = i;
                num_is_int = 1;
                st = S_NEG;
                continue;
            case '0':
                num_start = i;
                num_is_int = 1;
                st = S_0;
                continue;
            case 't': lit = lit_ctx[0]; li = 1; st = S_LITERAL; continue;
            case 'f': lit = lit_ctx[1]; li = 1; st = S_LITERAL; continue;
            case 'n': lit = lit_ctx[2]; li = 1; st = S_LITERAL; continue;
            default:
                if (c >= '1' && c <= '9') {
                    num_start = i;
                    num_is_int = 1;
                    st = S_1;
                    continue;
                }
                return fail(o, c, "looking for beginning of value");
            }
        case S_BEGIN_KEY_OR_EMPTY:
            if (is_space(c))
                continue;
            if (c == '}') {
                depth--;
                st = S_END_VALUE;
                goto end_value_check;
            }
            st = S_BEGIN_KEY;
            /* fall through */
        case S_BEGIN_KEY:
            if (is_space(c))
                continue;
            if (c == '"') {
                stack[depth - 1] = F_OBJ_KEY;
                st = S_IN_STRING;
                continue;
            }
            return fail(o, c, "looking for beginning of object key string");
        case S_END_VALUE:
            if (depth == 0) {
                /* Top-level value done (a number ended by this byte). */
                o->end = i;
                return GOJSON_OK;
            }
            if (is_space(c))
                continue;
            switch (stack[depth - 1]) {
            case F_OBJ_KEY:
                if (c == ':') {
                    stack[depth - 1] = F_OBJ_VALUE;
                    st = S_BEGIN_VALUE;
                    continue;
                }
                return fail(o, c, "after object key");
            case F_OBJ_VALUE:
                if (c == ',') {
                    st = S_BEGIN_KEY;
                    continue;
                }
                if (c == '}') {
                    depth--;
                    goto end_value_check;
                }
                return fail(o, c, "after object key:value pair");
            default:
                if (c == ',') {
                    st = S_BEGIN_VALUE;
                    continue;
                }
                if (c == ']') {
                    depth--;
                    goto end_value_check;
                }
                return fail(o, c, "after array element");
            }
        case S_IN_STRING:
            if (c == '"') {
                st = S_END_VALUE;
                goto end_value_check;
            }
            if (c == '\\') {
                st = S_IN_STRING_ESC;
                continue;
            }
            if (c < 0x20)
                return fail(o, c, "in string literal");
            continue;
        case S_IN_STRING_ESC:
            switch (c) {
            case 'b': case 'f': case 'n': case 'r': case 't':
            case '\\': case '/': case '"':
                st = S_IN_STRING;
                continue;
            case 'u':
                hex_left = 4;
                st = S_IN_STRING_ESC_U;
                continue;
            default:
                return fail(o, c, "in string escape code");
            }
        case S_IN_STRING_ESC_U:
            if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')) {
                if (--hex_left == 0)
                    st = S_IN_STRING;
                continue;
            }
            return fail(o, c, "in \\u hexadecimal character escape");
        case S_NEG:
            if (c == '0') {
                st = S_0;
                continue;
            }
            if (c >= '1' && c <= '9') {
                st = S_1;
                continue;
            }
            return fail(o, c, "in numeric literal");
        case S_1:
            if (c >= '0' && c <= '9')
                continue;
            /* fall through */
        case S_0:
            if (c == '.') {
                num_is_int = 0;
                st = S_DOT;
                continue;
            }
            if (c == 'e' || c == 'E') {
                num_is_int = 0;
                st = S_E;
                continue;
            }
            goto number_end;
        case S_DOT:
            if (c >= '0' && c <= '9') {
                st = S_DOT0;
                continue;
            }
            return fail(o, c, "after decimal point in numeric literal");
        case S_DOT0:
            if (c >= '0' && c <= '9')
                continue;
            if (c == 'e' || c == 'E') {
                st = S_E;
                continue;
            }
            goto number_end;
        case S_E:
            if (c == '+' || c == '-') {
                st = S_E_SIGN;
                continue;
            }
            /* fall through */
        case S_E_SIGN:
            if (c >= '0' && c <= '9') {
                st = S_E0;
                continue;
            }
            return fail(o, c, "in exponent of numeric literal");
        case S_E0:
            if (c >= '0' && c <= '9')
                continue;
            goto number_end;
        case S_LITERAL:
            if (c == (unsigned char)lit[li]) {
                if (lit[++li] == 0) {
                    st = S_END_VALUE;
                    goto end_value_check;
                }
                continue;
            } else {
                char ctx[64];
                snprintf(ctx, sizeof ctx, "in literal %s (expecting '%c')", lit, lit[li]);
                return fail(o, c, ctx);
            }
        }
        continue;

    number_end:
        note_number(o, buf, num_start, i, num_is_int);
        st = S_END_VALUE;
        goto again;

    end_value_check:
        if (depth == 0) {
            o->end = i + 1;
            return GOJSON_OK;
        }
    }

    /* End of input. */
    switch (st) {
    case S_0: case S_1: case S_DOT0: case S_E0:
        if (depth == 0) {
            note_number(o, buf, num_start, len, num_is_int);
            o->end = len;
            return GOJSON_OK;
        }
        break;
    default:
        break;
    }
    strcpy(o->msg, "unexpected EOF");
    return GOJSON_ERR;
}

size_t gojson_depth(const char *buf, size_t len, size_t limit)
{
    /* One pass, no stack: only the count of open brackets matters, and
     * brackets inside strings do not count.  Unbalanced input is fine (the
     * scanner reports it); this only bounds the work a parser would do. */
    size_t depth = 0, deepest = 0;
    for (size_t i = 0; i < len; i++) {
        switch (buf[i]) {
        case '"':
            for (i++; i < len && buf[i] != '"'; i++)
                if (buf[i] == '\\')
                    i++;
            break;
        case '[':
        case '{':
            if (++depth > deepest) {
                deepest = depth;
                if (deepest > limit)
                    return deepest;
            }
            break;
        case ']':
        case '}':
            if (depth)
                depth--;
            break;
        default:
            break;
        }
    }
    return deepest;
}
