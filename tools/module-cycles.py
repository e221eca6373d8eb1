# Top-level module dependency cycles of src/ (`python3 tools/module-cycles.py` from the repo root).
import os,re,collections
deps=collections.defaultdict(set)
mods=set(x[:-3] if x.endswith('.rs') else x for x in os.listdir('src') if x not in('lib.rs','main.rs'))
for root,_,files in os.walk('src'):
    for f in files:
        if not f.endswith('.rs') or f=='tests.rs': continue  # test modules may reach up
        p=os.path.join(root,f)
        rel=os.path.relpath(p,'src').split(os.sep)[0]
        m=rel[:-3] if rel.endswith('.rs') else rel
        if m in('lib','main'): continue
        s=re.sub(r'//.*','',open(p).read())
        for t in re.findall(r'crate::([a-z_]+)',s):
            if t!=m and t in mods: deps[m].add(t)
def reach(a):
    seen=set();st=[a]
    while st:
        x=st.pop()
        for y in deps[x]:
            if y not in seen: seen.add(y); st.append(y)
    return seen
for m in sorted(deps): print(m,'->',' '.join(sorted(deps[m])))
cyc=sorted((a,b) for a in mods for b in deps[a] if a in reach(b))
print('cycles:',cyc or 'none')
