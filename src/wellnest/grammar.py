"""The field grammar as `wellnest fields` prints it: a wheel ships no docs folder.

What the grammar accepts is decided by includes/fields.jinja alone; this is its
summary for people, and tests/test_fields.py checks that the types listed here
are exactly the parser's.
"""

GRAMMAR = """\
A field is NAME:TYPE[=ARGS][:MODIFIER]..., written with letters, digits and
_ : = , . - only, so no shell needs quoting.

Types
  str[=N]         text of at most N characters (default 255, at most 2000)
  text            long text, at most 16000 characters
  int             a 32-bit whole number
  bigint          a 64-bit whole number
  decimal=P,S     an exact decimal of P digits, S after the point (P <= 38,
                  S <= 30), sent and answered as a string: "12.50"
  bool            true or false
  date            a calendar date: 2030-01-31
  datetime        an instant with its offset, answered in UTC
  uuid            a UUID
  enum=a,b,c      one of the listed snake_case values
  json            a JSON object or array
  ref=MODULE      an object of a module listed before, owned by the same user
  refs=MODULE     a set of such objects, e.g. tags:refs=tags: sent and read as
                  tag_ids (at most 100), listed by ?tag_id= and ?tag_id__in=;
                  deleting either side removes the link; takes no modifiers

Modifiers (each at most once, in any order)
  opt             may be null, and may be omitted
  uniq            unique per owner: a duplicate answers 409
  index           indexed, and lists sort by it (refs always are)
  search          str and text: the list's ?q= finds words in it
  default=VALUE   the value when omitted; datetime takes now, uuid takes new
  ondelete=ACTION for refs: restrict (409 while referenced, the default),
                  cascade, or setnull (needs opt)

Example
  wellnest add-module payments amount:decimal=12,2 currency:str=3 \\
    status:enum=pending,paid:default=pending booking:ref=bookings:opt:ondelete=setnull
"""


def types() -> list[str]:
    """The type names the summary lists, in order."""
    section = GRAMMAR.split("Types\n", 1)[1].split("\n\n", 1)[0]
    names = []
    for line in section.splitlines():
        if line.startswith("  ") and not line.startswith("   "):
            names.append(line.split()[0].split("[")[0].split("=")[0])
    return names
