/* examples/lox/scanner.c: the Lox scanner. One token per call, scanned
 * lazily from the source; keywords are recognised by comparing the
 * identifier against a small table. */
#include "scanner.h"

#include <stdbool.h>
#include <string.h>

static struct {
	const char *start;
	const char *cur;
	int line;
} sc;

void scanner_init(const char *source)
{
	sc.start = source;
	sc.cur = source;
	sc.line = 1;
}

static bool at_end(void)
{
	return *sc.cur == '\0';
}

static char advance(void)
{
	return *sc.cur++;
}

static char peek(void)
{
	return *sc.cur;
}

static char peek_next(void)
{
	return at_end() ? '\0' : sc.cur[1];
}

static bool match(char c)
{
	if (at_end() || *sc.cur != c)
		return false;
	sc.cur++;
	return true;
}

static token make(token_kind k)
{
	return (token){k, sc.start, (int)(sc.cur - sc.start), sc.line};
}

static token error_token(const char *msg)
{
	return (token){T_ERROR, msg, (int)strlen(msg), sc.line};
}

static void skip_space(void)
{
	for (;;) {
		switch (peek()) {
		case ' ':
		case '\r':
		case '\t':
			advance();
			break;
		case '\n':
			sc.line++;
			advance();
			break;
		case '/':
			if (peek_next() != '/')
				return;
			while (peek() != '\n' && !at_end())
				advance();
			break;
		default:
			return;
		}
	}
}

static bool is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static token_kind keyword(const char *s, int len)
{
	static const struct {
		const char *word;
		token_kind kind;
	} words[] = {
	    {"and", T_AND},     {"class", T_CLASS},   {"else", T_ELSE},
	    {"false", T_FALSE}, {"for", T_FOR},       {"fun", T_FUN},
	    {"if", T_IF},       {"nil", T_NIL},       {"or", T_OR},
	    {"print", T_PRINT}, {"return", T_RETURN}, {"super", T_SUPER},
	    {"this", T_THIS},   {"true", T_TRUE},     {"var", T_VAR},
	    {"while", T_WHILE},
	};
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if ((int)strlen(words[i].word) == len &&
		    !memcmp(words[i].word, s, (size_t)len))
			return words[i].kind;
	return T_IDENTIFIER;
}

static token identifier(void)
{
	while (is_alpha(peek()) || is_digit(peek()))
		advance();
	return make(keyword(sc.start, (int)(sc.cur - sc.start)));
}

static token number(void)
{
	while (is_digit(peek()))
		advance();
	if (peek() == '.' && is_digit(peek_next())) {
		advance();
		while (is_digit(peek()))
			advance();
	}
	return make(T_NUMBER);
}

static token string(void)
{
	while (peek() != '"' && !at_end()) {
		if (peek() == '\n')
			sc.line++;
		advance();
	}
	if (at_end())
		return error_token("Unterminated string.");
	advance();
	return make(T_STRING);
}

token scan_token(void)
{
	skip_space();
	sc.start = sc.cur;
	if (at_end())
		return make(T_EOF);
	char c = advance();
	if (is_alpha(c))
		return identifier();
	if (is_digit(c))
		return number();
	switch (c) {
	case '(':
		return make(T_LEFT_PAREN);
	case ')':
		return make(T_RIGHT_PAREN);
	case '{':
		return make(T_LEFT_BRACE);
	case '}':
		return make(T_RIGHT_BRACE);
	case ';':
		return make(T_SEMICOLON);
	case ',':
		return make(T_COMMA);
	case '.':
		return make(T_DOT);
	case '-':
		return make(T_MINUS);
	case '+':
		return make(T_PLUS);
	case '/':
		return make(T_SLASH);
	case '*':
		return make(T_STAR);
	case '!':
		return make(match('=') ? T_BANG_EQUAL : T_BANG);
	case '=':
		return make(match('=') ? T_EQUAL_EQUAL : T_EQUAL);
	case '<':
		return make(match('=') ? T_LESS_EQUAL : T_LESS);
	case '>':
		return make(match('=') ? T_GREATER_EQUAL : T_GREATER);
	case '"':
		return string();
	}
	return error_token("Unexpected character.");
}
