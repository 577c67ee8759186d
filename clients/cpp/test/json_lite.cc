#include "json_lite.h"

#include <algorithm>
#include <stdexcept>

namespace jsonlite {

const Value* Value::find(const std::string& key) const {
  for (const auto& [k, v] : obj) {
    if (k == key) return &v;
  }
  return nullptr;
}

bool Value::operator==(const Value& o) const {
  if (type != o.type) return false;
  switch (type) {
    case Type::kNull: return true;
    case Type::kBool: return b == o.b;
    case Type::kInt: return i == o.i;
    case Type::kString: return s == o.s;
    case Type::kArray: return arr == o.arr;
    case Type::kObject:
      if (obj.size() != o.obj.size()) return false;
      for (const auto& [k, v] : obj) {
        const Value* other = o.find(k);
        if (!other || !(*other == v)) return false;
      }
      return true;
  }
  return false;
}

namespace {

struct Parser {
  const std::string& t;
  size_t p = 0;

  [[noreturn]] void fail(const std::string& why) {
    throw std::runtime_error("JSON: " + why + " at offset " + std::to_string(p));
  }
  void ws() {
    while (p < t.size() && (t[p] == ' ' || t[p] == '\n' || t[p] == '\r' || t[p] == '\t')) ++p;
  }
  bool eat(char c) {
    ws();
    if (p < t.size() && t[p] == c) {
      ++p;
      return true;
    }
    return false;
  }
  void expect(char c) {
    if (!eat(c)) fail(std::string("expected '") + c + "'");
  }
  static void utf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
      out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out.push_back(static_cast<char>(0xc0 | (cp >> 6)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    } else if (cp < 0x10000) {
      out.push_back(static_cast<char>(0xe0 | (cp >> 12)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    } else {
      out.push_back(static_cast<char>(0xf0 | (cp >> 18)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3f)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    }
  }
  uint32_t hex4() {
    if (p + 4 > t.size()) fail("short \\u escape");
    uint32_t v = static_cast<uint32_t>(std::stoul(t.substr(p, 4), nullptr, 16));
    p += 4;
    return v;
  }
  std::string str() {
    ws();
    if (p >= t.size() || t[p] != '"') fail("expected a string");
    ++p;
    std::string out;
    while (p < t.size() && t[p] != '"') {
      char c = t[p++];
      if (c != '\\') {
        out.push_back(c);
        continue;
      }
      if (p >= t.size()) fail("bad escape");
      char e = t[p++];
      switch (e) {
        case '"': out.push_back('"'); break;
        case '\\': out.push_back('\\'); break;
        case '/': out.push_back('/'); break;
        case 'b': out.push_back('\b'); break;
        case 'f': out.push_back('\f'); break;
        case 'n': out.push_back('\n'); break;
        case 'r': out.push_back('\r'); break;
        case 't': out.push_back('\t'); break;
        case 'u': {
          uint32_t cp = hex4();
          if (cp >= 0xd800 && cp < 0xdc00 && p + 6 <= t.size() && t[p] == '\\' && t[p + 1] == 'u') {
            p += 2;
            uint32_t lo = hex4();
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
          }
          utf8(out, cp);
          break;
        }
        default: fail("bad escape");
      }
    }
    if (p >= t.size()) fail("unterminated string");
    ++p;
    return out;
  }
  Value value() {
    ws();
    if (p >= t.size()) fail("unexpected end");
    char c = t[p];
    if (c == '{') {
      ++p;
      Value v = Value::object();
      if (eat('}')) return v;
      do {
        std::string k = str();
        expect(':');
        v.add(std::move(k), value());
      } while (eat(','));
      expect('}');
      return v;
    }
    if (c == '[') {
      ++p;
      Value v = Value::array();
      if (eat(']')) return v;
      do v.push(value());
      while (eat(','));
      expect(']');
      return v;
    }
    if (c == '"') return Value::string(str());
    if (t.compare(p, 4, "true") == 0) { p += 4; return Value::boolean(true); }
    if (t.compare(p, 5, "false") == 0) { p += 5; return Value::boolean(false); }
    if (t.compare(p, 4, "null") == 0) { p += 4; return Value::null(); }
    size_t start = p;
    if (t[p] == '-') ++p;
    while (p < t.size() && t[p] >= '0' && t[p] <= '9') ++p;
    if (p == start || (p < t.size() && (t[p] == '.' || t[p] == 'e' || t[p] == 'E'))) {
      fail("only integers are allowed");
    }
    return Value::integer(std::stoll(t.substr(start, p - start)));
  }
};

void quote(std::string& out, const std::string& s) {
  out.push_back('"');
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  out.push_back('"');
}

void dumpTo(std::string& out, const Value& v, int indent, int depth) {
  auto nl = [&](int d) {
    if (indent <= 0) return;
    out.push_back('\n');
    out.append(static_cast<size_t>(indent * d), ' ');
  };
  switch (v.type) {
    case Value::Type::kNull: out += "null"; break;
    case Value::Type::kBool: out += v.b ? "true" : "false"; break;
    case Value::Type::kInt: out += std::to_string(v.i); break;
    case Value::Type::kString: quote(out, v.s); break;
    case Value::Type::kArray:
      if (v.arr.empty()) { out += "[]"; break; }
      out.push_back('[');
      for (size_t i = 0; i < v.arr.size(); ++i) {
        if (i) out.push_back(',');
        nl(depth + 1);
        dumpTo(out, v.arr[i], indent, depth + 1);
      }
      nl(depth);
      out.push_back(']');
      break;
    case Value::Type::kObject:
      if (v.obj.empty()) { out += "{}"; break; }
      out.push_back('{');
      for (size_t i = 0; i < v.obj.size(); ++i) {
        if (i) out.push_back(',');
        nl(depth + 1);
        quote(out, v.obj[i].first);
        out += indent > 0 ? ": " : ":";
        dumpTo(out, v.obj[i].second, indent, depth + 1);
      }
      nl(depth);
      out.push_back('}');
      break;
  }
}

}  // namespace

Value parse(const std::string& text) {
  Parser ps{text};
  Value v = ps.value();
  ps.ws();
  if (ps.p != text.size()) ps.fail("trailing characters");
  return v;
}

std::string dump(const Value& v, int indent) {
  std::string out;
  dumpTo(out, v, indent, 0);
  return out;
}

}  // namespace jsonlite
