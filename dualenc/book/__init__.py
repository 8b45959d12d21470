"""What the book's pages use: notebook parameters and helpers, the build profile, the explorers and
every figure (plots). It sits on top of everything else; nothing below imports it."""
