"""One module per verb; every heavy import (torch, pandas, gensim) happens inside the command."""
