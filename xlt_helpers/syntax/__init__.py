"""Syntax transformation: give a language another language's noun and verb word order (issue 3).

Pure-function API used by the pipeline:
    Tree                  a dependency tree (words, UPOS, 1-based heads with 0 = root, UD v2 relations)
    read_conllu(path)     trees of a CoNLL-U file (multiword ranges and empty nodes skipped, v1 labels -> v2)
    parse_spec(spec)      'en~fr@N~hi@V' -> SyntaxSpec (ValueError on bad specs)
    load_ordering_model(language)   ordering model learned from the language's UD train files (cached)
    reorder(tree, spec, seed)       new order as a permutation of 0-based word indices (deterministic)
    parse(language, sentences)      trees for pre-tokenised sentences from a locally trained, cached UDPipe parser
    apply_order(tree, order)        the tree with its words in that order (labels follow the same way)
"""
from .conllu import read_conllu
from .model import OrderingModel, learn_ordering_model
from .parser import parse
from .reorder import reorder
from .spec import SyntaxSpec, parse_spec
from .store import load_ordering_model
from .tree import Tree, apply_order

__all__ = [
    "Tree",
    "read_conllu",
    "parse_spec",
    "SyntaxSpec",
    "OrderingModel",
    "learn_ordering_model",
    "load_ordering_model",
    "reorder",
    "apply_order",
    "parse",
]
